"""Packaging: the run recipes ship inside the package, and a built wheel (non-editable, nothing from the checkout)
runs its console scripts from any directory, zoejax-demo's recipe and ``--config configs/NAME.py`` included."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import zoejax
from zoejax.cli import demo
from zoejax.cli.config_loading import with_packaged_configs
from zoejax.configs import RECIPES_DIR, recipe_path

ROOT = Path(__file__).resolve().parents[1]


def test_recipes_live_in_the_package_and_configs_is_a_link_to_them():
    package = Path(zoejax.__file__).resolve().parent
    assert RECIPES_DIR == package / "configs"
    assert (ROOT / "configs").resolve() == RECIPES_DIR  # `--config configs/zoedepth_n.py` in a checkout
    assert demo.CONFIG_FILE == recipe_path("demo") and demo.CONFIG_FILE.is_file()
    assert {p.stem for p in RECIPES_DIR.glob("*.py")} >= {"demo", "zoedepth_n", "zoedepth_k", "zoedepth_nk"}


def test_configs_paths_name_the_packaged_recipe_only_when_no_such_file_is_here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    packaged = str(RECIPES_DIR / "zoedepth_n.py")
    assert with_packaged_configs(["--config", "configs/zoedepth_n.py:tiny", "--workdir", "w"]) == \
        ["--config", f"{packaged}:tiny", "--workdir", "w"]
    assert with_packaged_configs(["--config=configs/zoedepth_n.py"]) == [f"--config={packaged}"]
    assert with_packaged_configs(["--config", "configs/nope.py"]) == ["--config", "configs/nope.py"]
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "zoedepth_n.py").write_text("def get_config():\n    return None\n")
    assert with_packaged_configs(["--config=configs/zoedepth_n.py"]) == ["--config=configs/zoedepth_n.py"]


def _run(args, cwd, site):
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(site), "JAX_PLATFORMS": "cpu"}
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_a_built_wheel_runs_every_console_script_from_any_directory(tmp_path):
    """Builds the wheel from a copy of the sources (so the checkout gets no build/), unpacks it as pip installs
    it, and runs from a folder holding nothing: the interpreter's own site-packages give the dependencies."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for package in ("zoejax", "data_pipelines"):
        shutil.copytree(ROOT / package, src / package, ignore=shutil.ignore_patterns("__pycache__"))
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                            "--no-index", "-w", str(tmp_path / "dist"), str(src)],
                           capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = (tmp_path / "dist").glob("zoejax-*.whl")
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        archive.extractall(site)
    assert "zoejax/configs/demo.py" in names and "data_pipelines/pipeline.py" in names
    assert {f"zoejax/serving/static/{f}" for f in ("index.html", "app.js", "viewer.js", "style.css")} <= names
    (dist_info,) = site.glob("zoejax-*.dist-info")
    entry_points = configparser.ConfigParser()
    entry_points.read(dist_info / "entry_points.txt")
    scripts = dict(entry_points["console_scripts"])
    assert set(scripts) == {"zoejax-info", "zoejax-demo", "zoejax-convert", "zoejax-train", "zoejax-data",
                            "zoejax-eval", "zoejax-predict", "zoejax-serve"}

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    check = (
        "import importlib, importlib.util, sys\n"
        "import zoejax\n"
        f"assert zoejax.__file__.startswith({str(site)!r}), zoejax.__file__\n"
        f"for target in {sorted(scripts.values())!r}:\n"
        "    module, _, function = target.partition(':')\n"
        "    assert callable(getattr(importlib.import_module(module), function)), target\n"
        "from zoejax.cli import demo\n"
        "spec = importlib.util.spec_from_file_location('recipe', demo.CONFIG_FILE)\n"
        "recipe = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(recipe)\n"
        "config = recipe.get_config()\n"
        "print(demo.CONFIG_FILE, config.num_train_steps, tuple(config.input_size))\n")
    result = _run(["-c", check], elsewhere, site)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == [str(site / "zoejax" / "configs" / "demo.py"), "160", "(96,", "128)"]

    info = _run(["-m", "zoejax.cli.info", "--config", "configs/zoedepth_n.py:tiny"], elsewhere, site)
    assert info.returncode == 0, info.stderr[-3000:]
    assert "params:" in info.stdout
