"""The shipped run recipes: ``get_config`` files for ``--config`` (big_vision style, see ``zoejax.config_base``).

They live inside the package so that an installed zoejax has them (``zoejax-demo`` trains ``demo.py``); in a
checkout ``configs/`` is a link to this folder, so ``--config configs/zoedepth_n.py`` names the same files, and
the CLIs read ``configs/NAME.py`` as the shipped recipe when the current directory has no such file.
"""

from __future__ import annotations

from pathlib import Path

RECIPES_DIR = Path(__file__).resolve().parent


def recipe_path(name: str) -> Path:
    """The file of the shipped recipe ``name`` ("demo", "zoedepth_n", ...); FileNotFoundError names the others."""
    path = RECIPES_DIR / f"{name}.py"
    if not path.is_file():
        shipped = sorted(p.stem for p in RECIPES_DIR.glob("*.py") if p.stem != "__init__")
        raise FileNotFoundError(f"no shipped recipe {name!r}; shipped: {', '.join(shipped)}")
    return path
