"""``make demo`` / ``zoejax-demo``: train a small ZoeDepth on synthetic scenes, evaluate it, write depth PNGs.

Nothing is downloaded: the scenes are procedural rooms with exact metric depth, fed by the grain pipeline
(``data_pipelines``, synthetic source). The run is ``configs/demo.py`` through the real training system (the
same builder as ``zoejax-train``: sharded jitted steps, OneCycle AdamW, orbax checkpoints, metrics.jsonl and
TensorBoard in ``OUTPUT/run``; re-running resumes). Held-out rooms (a scene seed training never uses) are
scored with ``zoejax.evaluation``'s Evaluator and official metrics before and after training, and printed as
the paper-order table; depth PNGs of a few of them are written next to the run.
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from pathlib import Path

from PIL import Image

from zoejax.configs import recipe_path
from zoejax.host_memory import apply_from_environment
from zoejax.io.depth_files import write_depth
from zoejax.io.safe_output import atomic_path

CONFIG_FILE = recipe_path("demo")  # shipped inside the package: the demo runs from an installed zoejax too


def _load_config(args):
    spec = importlib.util.spec_from_file_location("zoejax_demo_config", CONFIG_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = module.get_config(args.backbone)
    with config.unlocked():
        if args.steps is not None:
            config.num_train_steps = args.steps
            config.checkpoint_every_steps = args.steps
            config.log_every_steps = max(1, min(config.log_every_steps, args.steps))
        if args.batch is not None:
            config.global_batch_size = args.batch
            config.eval.batch_size = args.batch
        if args.height is not None or args.width is not None:
            size = (args.height or config.input_size[0], args.width or config.input_size[1])
            config.input_size = size
            sources = [{**s, "size": size} for s in config.data.to_dict()["sources"]]
            config.data.sources = tuple(sources)
        if args.eval_scenes is not None:
            config.eval.num_examples = args.eval_scenes
        config.seed = args.seed
    return config


def main(argv: list[str] | None = None) -> None:
    apply_from_environment()  # ZOEJAX_KEEP_HOST_MEMORY=1: before the first computation (zoejax/host_memory.py)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default="demo_out", help="folder for the run and the depth files")
    parser.add_argument("--backbone", default="small",
                        help="encoder of the ZoeD_N model (default: small, a 6-block BEiT of width 192)")
    parser.add_argument("--steps", type=int, default=None, help="training steps (default: configs/demo.py)")
    parser.add_argument("--batch", type=int, default=None, help="global batch size (default: configs/demo.py)")
    parser.add_argument("--height", type=int, default=None, help="network input height, multiple of 32")
    parser.add_argument("--width", type=int, default=None, help="network input width, multiple of 32")
    parser.add_argument("--eval-scenes", type=int, default=None, help="held-out scenes to evaluate")
    parser.add_argument("--seed", type=int, default=0, help="seed of the weights and the data order")
    args = parser.parse_args(argv)

    import zoejax
    from data_pipelines.synthetic.scenes import INDOOR, render_frame
    from zoejax.cli.train import build_run, eval_datasets, eval_settings
    from zoejax.evaluation.evaluator import Evaluator
    from zoejax.evaluation.report import format_table
    from zoejax.evaluation.run import HELD_OUT_SCENE_SEED, DatasetEvaluation
    from zoejax.models.init import count_params, init_params
    from zoejax.models.zoedepth import ZoeDepth
    from zoejax.training.loop import train
    from zoejax.training.sharding import make_mesh

    t_start = time.perf_counter()
    out = Path(args.output)
    config = _load_config(args)
    model, run, optim, loss, batches, _ = build_run(config, 0, 1)
    size = tuple(config.input_size)
    # The held-out set exactly as the run's periodic evaluation and zoejax-eval build it.
    evaluation = DatasetEvaluation(eval_datasets(config), eval_settings(config, 1), 0, 1)
    evaluator = Evaluator(ZoeDepth(model), make_mesh(run.mesh_shape))

    def score(params, name):
        (result,) = evaluation(evaluator, params, flip_tta=config.eval.flip_tta, progress=False)
        return {**result.to_dict(), "dataset": name}

    untrained_params = init_params(model, run.seed)  # the loop's initialisation
    before = score(untrained_params, "untrained")
    print(f"ZoeD_N ({args.backbone}, {count_params(untrained_params):,} parameters): training {run.num_train_steps} "
          f"steps at batch {run.global_batch_size}, {size[0]}x{size[1]}, on synthetic rooms -> {out / 'run'}")
    t0 = time.perf_counter()
    result = train(model, run, optim, loss, str(out / "run"), batches)
    print(f"trained in {time.perf_counter() - t0:.0f}s: final SILog loss {result.get('loss', float('nan')):.3f}")

    trained = zoejax.load(out / "run", input_size=size)
    after = score(trained.params, "trained")
    files = []
    for i in range(min(3, config.eval.num_examples)):
        image, depth, _ = render_frame(HELD_OUT_SCENE_SEED, i, INDOOR, *size)
        stem = out / f"scene{i}"
        with atomic_path(out / f"scene{i}.png") as tmp:
            Image.fromarray(image).save(tmp, format="PNG")
        files.append(out / f"scene{i}.png")
        files += write_depth(stem.with_name(stem.name + "_gt_depth"), depth)
        files += write_depth(stem.with_name(stem.name + "_pred_depth"), trained.predict(image))

    rel_before, rel_after = before["metrics"]["abs_rel"], after["metrics"]["abs_rel"]
    print(f"\nheld-out synthetic rooms ({after['num_images']} images, scene seed {HELD_OUT_SCENE_SEED}), "
          f"official metrics{', flip TTA' if config.eval.flip_tta else ''}:")
    print(format_table([before, after]))
    print(f"\nabs_rel: untrained {rel_before:.3f} -> trained {rel_after:.3f} "
          f"({100 * (rel_after - rel_before) / rel_before:+.0f}%)")
    print(f"wrote {len(files)} files to {out}/: scene*.png (input), scene*_gt_depth.png and scene*_pred_depth.png "
          f"(16-bit millimetres), *_color.png (previews), *.npy (metres)")
    print(f"run (checkpoints, metrics.jsonl, tensorboard/): {out / 'run'}; total {time.perf_counter() - t_start:.0f}s")


if __name__ == "__main__":
    main()
