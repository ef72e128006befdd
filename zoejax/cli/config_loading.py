"""The CLI boundary: ml-collections config files with ``--config.<key>=value`` overrides -> typed dataclasses.

Nothing below the CLI sees a ConfigDict.
"""

from __future__ import annotations

import difflib
import importlib.util
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import ml_collections
from absl import flags
from ml_collections import config_flags

from zoejax.configs import RECIPES_DIR
from zoejax.models.config import ZoeDepthConfig, build_dataclass


def define_config_flag(default: str | None = None) -> None:
    """Defines ``--config`` once per process (zoejax-train and zoejax-info share it when both are imported)."""
    if "config" in flags.FLAGS:
        return
    config_flags.DEFINE_config_file(
        "config", default,
        "Config file, optionally with an argument: configs/zoedepth_n.py:beit_b384. Any field can be "
        "overridden with --config.<field>=<value>, e.g. --config.model.dtype=bfloat16.",
        lock_config=True)


def config_argument(argv: Sequence[str]) -> str | None:
    """The value of ``--config`` in ``argv`` (``--config=V`` or ``--config V``; the last one wins), or None."""
    value = None
    for i, arg in enumerate(argv):
        if arg.startswith("--config="):
            value = arg[len("--config="):]
        elif arg == "--config" and i + 1 < len(argv):
            value = argv[i + 1]
    return value


def packaged_config(value: str) -> str:
    """``configs/NAME.py[:arg]`` with no such file here names the shipped recipe (``zoejax/configs/NAME.py``), so
    an installed zoejax takes the same ``--config`` paths from any directory; anything else is kept as it is."""
    path, sep, arg = value.partition(":")
    relative = Path(path)
    if relative.parent == Path("configs") and not relative.is_file() and (RECIPES_DIR / relative.name).is_file():
        return f"{RECIPES_DIR / relative.name}{sep}{arg}"
    return value


def with_packaged_configs(argv: Sequence[str]) -> list[str]:
    """``argv`` with every ``--config`` value passed through ``packaged_config``."""
    out = list(argv)
    for i, arg in enumerate(out):
        if arg.startswith("--config="):
            out[i] = "--config=" + packaged_config(arg[len("--config="):])
        elif arg == "--config" and i + 1 < len(out):
            out[i + 1] = packaged_config(out[i + 1])
    return out


def check_config_file(argv: Sequence[str], program: str) -> list[str]:
    """Loads the ``--config`` file once before absl parses the flags, so that a missing file, a failing
    ``get_config`` or an override of a field the config does not have is one error line naming it (exit code 2)
    instead of ml_collections' traceback (or, for a missing file, a crash when the run first reads the config).

    Returns ``argv`` with ``configs/NAME.py`` resolved to the shipped recipe where needed (``packaged_config``):
    the arguments to hand to absl."""
    argv = with_packaged_configs(argv)
    value = config_argument(argv)
    if not value:
        return argv
    path, _, arg = value.partition(":")
    error = None
    if not os.path.isfile(path):
        error = f"config file not found: {path}"
    else:
        try:
            spec = importlib.util.spec_from_file_location("zoejax_checked_config", path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            if not hasattr(module, "get_config"):
                error = f"config file {path} defines no get_config()"
            else:
                config = module.get_config(*([arg] if arg else []))
                unknown = _unknown_override(config, argv)
                error = f"{value} {unknown}" if unknown else None
        except Exception as e:  # noqa: BLE001 - any failure of the user's config file becomes one message
            error = f"config {value}: {type(e).__name__}: {e}"
    if error:
        print(f"{program}: error: {error}", file=sys.stderr)
        sys.exit(2)
    return argv


def _unknown_override(config: ml_collections.ConfigDict, argv: Sequence[str]) -> str | None:
    """An error naming the first ``--config.<field>`` override whose field the config does not have."""
    for arg in argv:
        if not arg.startswith("--config."):
            continue
        field = arg[len("--config."):].split("=", 1)[0]
        node, done = config, []
        for part in field.split("."):
            if not isinstance(node, ml_collections.ConfigDict) or part not in node:
                siblings = list(node.keys()) if isinstance(node, ml_collections.ConfigDict) else []
                close = difflib.get_close_matches(part, siblings, n=1)
                hint = f" (did you mean {'.'.join([*done, close[0]])!r}?)" if close else ""
                return f"has no field {field!r}{hint}"
            node, done = node[part], [*done, part]
    return None


def model_config(config: ml_collections.ConfigDict) -> ZoeDepthConfig:
    """The typed model config of a loaded ConfigDict (unknown or invalid fields raise ValueError); its
    ``model_type`` picks the family as in ``model_config.json`` (``model_config_from_dict``)."""
    from zoejax.storage.converted import model_config_from_dict

    return model_config_from_dict(config.model.to_dict())


def run_configs(config: ml_collections.ConfigDict):
    """(model, train, optim, loss) typed configs of a full run ConfigDict (see ``zoejax/config_base.py``)."""
    from zoejax.training.config import RUN_FIELDS, TrainConfig
    from zoejax.training.optim import OptimConfig
    from zoejax.training.step import LossConfig

    d = config.to_dict()
    train = build_dataclass(TrainConfig, {k: d[k] for k in RUN_FIELDS if k in d}, "config")
    optim = dict(d["optim"])
    if optim.get("total_steps") == 0:  # the default: the schedule spans the run
        optim["total_steps"] = train.num_train_steps
    return model_config(config), train, build_dataclass(OptimConfig, optim, "config.optim"), \
        build_dataclass(LossConfig, d["loss"], "config.loss")
