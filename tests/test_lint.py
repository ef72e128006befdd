"""The code base stays ruff-clean (rules and line length in pyproject.toml)."""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_ruff_clean():
    paths = [p for p in ("zoejax", "data_pipelines", "configs", "tests", "benchmarks")
             if os.path.isdir(os.path.join(ROOT, p))]
    result = subprocess.run([sys.executable, "-m", "ruff", "check", *paths], cwd=ROOT, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stdout + result.stderr
