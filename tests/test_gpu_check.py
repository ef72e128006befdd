"""benchmarks/gpu_check.sh --dry-run prints the GPU check's commands (installing jax[cuda12]==0.10.2 into its own
venv, then the bf16 inference and train-step benchmarks over a batch sweep) and runs none of them."""

import os
import shlex
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "benchmarks", "gpu_check.sh")


def run(*args):
    env = {**os.environ, "PATH": "/usr/bin:/bin"}
    return subprocess.run(["bash", SCRIPT, *args], capture_output=True, text=True, env=env, timeout=60)


def test_dry_run_prints_install_and_benchmarks_and_runs_nothing(tmp_path):
    venv, out = tmp_path / "venv", tmp_path / "tables.txt"
    r = run("--dry-run", "--venv", str(venv), "--out", str(out), "--batch-sizes", "1,4", "--peak-tflops", "989")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[-1] == f"# output: {out}"
    py = f"{venv}/bin/python"
    assert lines[0] == f"python3 -m venv {venv}"
    assert lines[1] == f"{py} -m pip install -q -r {ROOT}/requirements.txt jax[cuda12]==0.10.2"
    words = [shlex.split(line) for line in lines[:-1]]
    bench = {os.path.basename(w[1]): w for w in words if w[0] == py and w[1].endswith(".py")}
    assert set(bench) == {"inference.py", "train_step.py"}
    for name, w in bench.items():
        assert os.path.isfile(w[1]), w[1]
        assert w[w.index("--dtypes") + 1] == "bf16" and w[w.index("--batch-sizes") + 1] == "1,4", name
    assert bench["train_step.py"][-2:] == ["--peak-tflops", "989"]
    assert not venv.exists() and not out.exists()  # a dry run installs and writes nothing


def test_unknown_argument_is_refused():
    r = run("--dry-run", "--batch", "4")
    assert r.returncode == 2 and "unknown argument --batch" in r.stderr
