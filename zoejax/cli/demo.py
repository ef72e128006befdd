"""``make demo`` / ``zoejax-demo``: train a small ZoeDepth on synthetic scenes, evaluate it, write depth PNGs.

Nothing is downloaded: the scenes are procedural rooms with exact metric depth, fed by the grain pipeline
(``data_pipelines``, synthetic source). The run goes through the real training system (sharded jitted steps,
OneCycle AdamW, orbax checkpoints in ``OUTPUT/run``; re-running resumes), then loads the work directory with
``zoejax.load`` and evaluates held-out rooms with the official metrics and ``predict``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from PIL import Image

from data_pipelines.config import DataConfig
from data_pipelines.pipeline import build_train
from data_pipelines.synthetic.scenes import render_frame
from zoejax.evaluation.metrics import MetricAverager, compute_metrics
from zoejax.io.depth_files import atomic_path, write_depth
from zoejax.models import presets
from zoejax.models.init import count_params, init_params

HELD_OUT_SEED = 10**9  # evaluation scenes never seen in training


def evaluate(model, scenes) -> dict[str, float]:
    avg = MetricAverager()
    for image, depth, _ in scenes:
        avg.update(compute_metrics(depth, model.predict(image), min_depth=1e-3, max_depth=10.0, crop=None))
    return avg.result()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default="demo_out", help="folder for the run and the depth files")
    parser.add_argument("--backbone", default="small", choices=sorted(presets.BACKBONES),
                        help="encoder of the ZoeD_N model (default: small, a 6-block BEiT of width 192)")
    parser.add_argument("--steps", type=int, default=150, help="training steps (default 150)")
    parser.add_argument("--batch", type=int, default=4, help="global batch size (default 4)")
    parser.add_argument("--height", type=int, default=128, help="network input height, multiple of 32")
    parser.add_argument("--width", type=int, default=160, help="network input width, multiple of 32")
    parser.add_argument("--eval-scenes", type=int, default=8, help="held-out scenes to evaluate")
    parser.add_argument("--seed", type=int, default=0, help="seed of the weights")
    args = parser.parse_args(argv)

    import zoejax
    from zoejax.api import ZoeDepthModel
    from zoejax.training.loop import TrainConfig, train
    from zoejax.training.optim import OptimConfig
    from zoejax.training.step import LossConfig

    out = Path(args.output)
    size = (args.height, args.width)
    config = presets.zoed_n(args.backbone)
    run = TrainConfig(num_train_steps=args.steps, global_batch_size=args.batch, log_every_steps=25,
                      checkpoint_every_steps=args.steps, seed=args.seed, mesh_shape=(-1, 1, 1))
    # From scratch (no MiDaS weights), so the encoder trains at the full learning rate.
    optim = OptimConfig(total_steps=args.steps, lr=3e-4, encoder_lr_factor=1.0, pos_enc_lr_factor=1.0,
                        grad_clip_norm=1.0)
    print(f"ZoeD_N ({args.backbone}): training {args.steps} steps at batch {args.batch}, {size[0]}x{size[1]}, "
          f"on synthetic rooms -> {out / 'run'}")
    data = DataConfig.synthetic(4096, size=size, image_size=size, batch_size=args.batch)
    batches = iter(build_train(data, seed=args.seed, process_index=0, process_count=1))
    t0 = time.perf_counter()
    result = train(config, run, optim, LossConfig(), str(out / "run"), batches)
    print(f"trained in {time.perf_counter() - t0:.0f}s: final SILog loss {result.get('loss', float('nan')):.3f}")

    trained = zoejax.load(out / "run", input_size=size)
    untrained = ZoeDepthModel(config, init_params(config, args.seed), input_size=size)
    scenes = [render_frame(HELD_OUT_SEED, i, 0, *size) for i in range(args.eval_scenes)]
    rows = {"untrained": evaluate(untrained, scenes), "trained": evaluate(trained, scenes)}
    print(f"\nheld-out scenes: {len(scenes)} ({count_params(trained.params):,} parameters)")
    print(f"{'model':<10} {'abs_rel':>8} {'rmse':>8} {'delta1':>8}")
    for name, m in rows.items():
        print(f"{name:<10} {m['abs_rel']:8.3f} {m['rmse']:8.3f} {m['a1']:8.3f}")

    files = []
    for i, (image, depth, _) in enumerate(scenes[:3]):
        stem = out / f"scene{i}"
        with atomic_path(stem.with_name(stem.name + ".png")) as tmp:
            Image.fromarray(image).save(tmp, format="PNG")
        files.append(stem.with_name(stem.name + ".png"))
        files += write_depth(stem.with_name(stem.name + "_gt_depth"), depth)
        files += write_depth(stem.with_name(stem.name + "_pred_depth"), trained.predict(image))
    print(f"\nwrote {len(files)} files to {out}/ (scene*_pred_depth.png: 16-bit mm; *_color.png: previews)")


if __name__ == "__main__":
    main()
