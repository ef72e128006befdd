"""The one-command fine-tune on a custom list (configs/finetune_custom.py), run through ``zoejax-train``'s own
``main`` in this process: a tiny list of frames on disk and the CLI's result line."""

import json
import os
import sys

import numpy as np
import pytest
from PIL import Image


def write_list(folder, name: str, frames: int, hw: tuple[int, int], max_depth: float, seed: int) -> str:
    """``frames`` random RGB frames of ``hw`` (H, W) with depth in metres on [0.5, max_depth] (``.npy``, scale 1)
    and a CSV list of them; returns the list's path."""
    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    rows = ["image,depth,depth_scale"]
    for i in range(frames):
        Image.fromarray(rng.integers(0, 255, (*hw, 3), dtype=np.uint8)).save(folder / f"{name}{i}.png")
        np.save(folder / f"{name}{i}.npy", rng.uniform(0.5, max_depth, hw).astype(np.float32))
        rows.append(f"{name}{i}.png,{name}{i}.npy,1")
    (folder / f"{name}.csv").write_text("\n".join(rows) + "\n")
    return str(folder / f"{name}.csv")


def run_train_cli(argv: list[str], capsys) -> dict:
    """``zoejax-train ARGV`` in this process: exit status 0 and its last stdout line, the result JSON."""
    from absl import flags

    from zoejax.cli import train as train_cli

    def forget_flags():
        # Each in-process CLI parses its own flags afresh: ml_collections defines one flag per override
        # (--config.<field>) while parsing, which a second parse in this process would define twice.
        for name in [n for n in flags.FLAGS if n.startswith("config.")]:
            delattr(flags.FLAGS, name)
        flags.FLAGS.unparse_flags()

    saved = sys.argv
    sys.argv = ["zoejax-train", *argv]
    forget_flags()
    try:
        with pytest.raises(SystemExit) as exit_info:
            train_cli.main()
    finally:
        sys.argv = saved
        forget_flags()
    out, err = capsys.readouterr()
    assert exit_info.value.code in (None, 0), err
    return json.loads(out.strip().splitlines()[-1])


def finetune_config(recipe: str, init_from):
    """The ConfigDict of ``--config RECIPE`` (a config file with its argument), as the CLI loads it, for a
    one-step run at batch 2."""
    import importlib.util

    path, _, arg = recipe.partition(":")
    spec = importlib.util.spec_from_file_location("finetune_custom", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = module.get_config(arg)
    config.init_from, config.num_train_steps, config.global_batch_size = str(init_from), 1, 2
    return config
