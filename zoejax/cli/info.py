"""``zoejax-info``: a model summary — parameters per top-level module, input size and one forward's FLOPs.

  zoejax-info --config configs/zoedepth_n.py            # BEiT-L ZoeD_N at 384x512
  zoejax-info --config configs/zoedepth_nk.py:beit_b384 --config.input_size='(480, 640)'
  zoejax-info --config configs/zoedepth_n.py:swin2_t256 --noflops
  zoejax-info --config configs/depth_anything_v2_metric_hypersim.py  # DINOv2-L/14 at 518x518
  zoejax-info --config configs/midas_relative.py                     # relative depth, no metric head

Any family a config builds (``zoejax.models.family``): ZoeDepth (MiDaS or Depth Anything core), Depth Anything
(V1 / V2, relative or metric) and relative MiDaS; the input multiple, output, parameter parts and analytic FLOP
count are the family's.

The last line is ``params: N``.
"""

from __future__ import annotations

import sys

import jax
import jax.numpy as jnp
from absl import app, flags, logging

from zoejax.cli.config_loading import check_config_file, define_config_flag, model_config
from zoejax.models import flops as model_flops
from zoejax.models.family import family_of, module_for
from zoejax.models.init import count_params, param_shapes
from zoejax.models.validation import check_image_shape
from zoejax.ops.platform import ANALYSIS

define_config_flag()
flags.DEFINE_integer("batch", 1, "Batch size used for the FLOP count.")
flags.DEFINE_bool("flops", True, "Count one forward's FLOPs with XLA's cost analysis (traces the model).")
FLAGS = flags.FLAGS

UNITS = {"metric_depth": "metres", "relative_depth": "relative inverse depth, unitless"}


def forward_flops(config, input_size: tuple[int, int], batch: int = 1) -> float:
    """FLOPs of one forward of any family's ``config`` at ``input_size`` from XLA's HLO cost analysis (lowered,
    not compiled), counted with the analysis op forms (``zoejax.ops.platform.ANALYSIS``: batched attention, XLA's
    convolutions): the CPU's per-head loop would be counted once per block, not once per head."""
    model = module_for(config, ops=ANALYSIS)
    images = jax.ShapeDtypeStruct((batch, *input_size, 3), jnp.float32)

    def forward(params, x):
        return model.apply({"params": params}, x)[config.output_key]

    return model_flops.xla_flops(forward, param_shapes(config), images)


def flops_text(n: float) -> str:
    """FLOPs in GFLOP, or in MFLOP below one GFLOP (the tiny test models)."""
    return f"{n / 1e9:,.1f} GFLOP" if n >= 1e9 else f"{n / 1e6:,.1f} MFLOP"


def analytic_note(config, input_size: tuple[int, int], batch: int = 1) -> str:
    """", N GFLOP analytic" from the family's analytic count (matmuls and convolutions only), or why there is
    none (ZoeD_NK's router, the Depth Anything head): XLA's count is then the only one."""
    try:
        return f", {flops_text(family_of(config).analytic_flops(config, batch, *input_size))} analytic"
    except NotImplementedError as e:
        return f"; {e}"


def summary_lines(config, input_size: tuple[int, int], batch: int = 1, flops: bool = True) -> list[str]:
    """The summary of any family's typed model ``config`` at ``input_size`` (H, W); the last line is
    ``params: N``. ValueError when the input size is not a multiple of the family's ``input_multiple``."""
    check_image_shape((batch, *input_size, 3), multiple=config.input_multiple)
    family = family_of(config)
    shapes = param_shapes(config)
    groups = family.parts(config, shapes)
    lines = [f"model: {family.describe(config)}",
             f"compute dtype: {config.dtype}, param dtype: {config.param_dtype}, remat: {config.remat.value}",
             f"input: {batch} x {input_size[0]} x {input_size[1]} x 3 (multiples of {config.input_multiple})",
             f"output: {config.output_key} ({UNITS[config.output_key]})"]
    width = max(len(k) for k in groups)
    lines += [f"  {name:<{width}}  {count_params(tree):>13,}" for name, tree in groups.items()]
    if flops:
        lines.append(f"forward FLOPs: {flops_text(forward_flops(config, input_size, batch))} (XLA cost analysis)"
                     f"{analytic_note(config, input_size, batch)}")
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
