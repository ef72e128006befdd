"""``zoejax-info``: a model summary — parameters per top-level module, input size and one forward's FLOPs.

  zoejax-info --config configs/zoedepth_n.py            # BEiT-L ZoeD_N at 384x512
  zoejax-info --config configs/zoedepth_nk.py:beit_b384 --config.input_size='(480, 640)'
  zoejax-info --config configs/zoedepth_n.py:swin2_t256 --noflops

The last line is ``params: N``.
"""

from __future__ import annotations

import sys

import jax
import jax.numpy as jnp
from absl import app, flags, logging

from zoejax.cli.config_loading import check_config_file, define_config_flag, model_config
from zoejax.models import flops as model_flops
from zoejax.models.config import ZoeDepthConfig, backbone_summary
from zoejax.models.init import count_params, param_shapes
from zoejax.models.validation import check_image_shape
from zoejax.models.zoedepth import ZoeDepth
from zoejax.ops.platform import ANALYSIS

define_config_flag()
flags.DEFINE_integer("batch", 1, "Batch size used for the FLOP count.")
flags.DEFINE_bool("flops", True, "Count one forward's FLOPs with XLA's cost analysis (traces the model).")
FLAGS = flags.FLAGS


def forward_flops(config: ZoeDepthConfig, input_size: tuple[int, int], batch: int = 1) -> float:
    """FLOPs of one forward at ``input_size`` from XLA's HLO cost analysis (lowered, not compiled), counted with
    the analysis op forms (``zoejax.ops.platform.ANALYSIS``: batched attention, XLA's convolutions): the CPU's
    per-head loop would be counted once per block, not once per head."""
    model = ZoeDepth(config, ops=ANALYSIS)
    images = jax.ShapeDtypeStruct((batch, *input_size, 3), jnp.float32)

    def forward(params, x):
        return model.apply({"params": params}, x)["metric_depth"]

    return model_flops.xla_flops(forward, param_shapes(config), images)


def summary_lines(config: ZoeDepthConfig, input_size: tuple[int, int], batch: int = 1,
                  flops: bool = True) -> list[str]:
    check_image_shape((batch, *input_size, 3))
    shapes = param_shapes(config)
    groups = {
        "encoder (core/pretrained/model)": shapes["core"]["pretrained"]["model"],
        "reassemble (core/pretrained/act_postprocess*)": {
            k: v for k, v in shapes["core"]["pretrained"].items() if k != "model"},
        "decoder (core/scratch)": shapes["core"]["scratch"],
        "metric head (metric_head)": shapes["metric_head"],
    }
    kind = "ZoeD_NK" if config.is_multi_head else f"single head ({config.head.bin_centers_type} bins)"
    lines = [f"model: {kind}, {backbone_summary(config)}, "
             f"domains {', '.join(f'{c.name} [{c.min_depth:g}, {c.max_depth:g}] m' for c in config.bins)}",
             f"compute dtype: {config.dtype}, param dtype: {config.param_dtype}, remat: {config.remat.value}",
             f"input: {batch} x {input_size[0]} x {input_size[1]} x 3"]
    width = max(len(k) for k in groups)
    lines += [f"  {name:<{width}}  {count_params(tree):>13,}" for name, tree in groups.items()]
    if flops:
        line = f"forward FLOPs: {forward_flops(config, input_size, batch) / 1e9:,.1f} GFLOP (XLA cost analysis)"
        try:  # matmuls and convolutions only; BEiT single-head models
            line += f", {model_flops.forward_flops(config, batch, *input_size) / 1e9:,.1f} GFLOP analytic"
        except NotImplementedError:  # ZoeD_NK's router, Swin encoders
            pass
        lines.append(line)
    lines.append(f"params: {count_params(shapes)}")
    return lines


def main_(argv) -> None:
    del argv
    logging.set_verbosity(logging.WARNING)
    if FLAGS.config is None:
        raise app.UsageError("--config is required, e.g. --config configs/zoedepth_n.py")
    try:
        cfg = model_config(FLAGS.config)
        lines = summary_lines(cfg, tuple(FLAGS.config.input_size), FLAGS.batch, FLAGS.flops)
    except ValueError as e:
        raise app.UsageError(str(e)) from None
    print("\n".join(lines))


def main() -> None:
    sys.argv[1:] = check_config_file(sys.argv[1:], "zoejax-info")
    app.run(main_)


if __name__ == "__main__":
    main()
