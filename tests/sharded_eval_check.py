"""Run by test_evaluation.py in a subprocess with 8 simulated CPU devices (XLA_FLAGS must be set before jax is
imported). Evaluates one tiny ZoeD_N and one ZoeD_NK on synthetic rooms with several mesh layouts and prints one
JSON line per (variant, layout) with the dataset means."""

import json
import os

os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"

import jax  # noqa: E402
import numpy as np  # noqa: E402

from zoejax.evaluation.evaluator import Evaluator  # noqa: E402
from zoejax.evaluation.run import EvalDataSettings, evaluate_datasets  # noqa: E402
from zoejax.models import presets  # noqa: E402
from zoejax.models.init import init_params, logical_axes  # noqa: E402
from zoejax.models.zoedepth import ZoeDepth  # noqa: E402
from zoejax.training.sharding import make_mesh, param_shardings  # noqa: E402

# Each variant against its one-device run on one sharded layout (each layout is a compile): ZoeD_N on every mesh
# axis, ZoeD_NK (router, per-image heads) on pure data parallel.
LAYOUTS = {"zoed_n": [(1, 1, 1), (2, 2, 2)], "zoed_nk": [(1, 1, 1), (8, 1, 1)]}

for variant in LAYOUTS:
    cfg = presets.VARIANTS[variant]("tiny")
    params = init_params(cfg, 0)
    # 11 frames at batch 8: the second batch is mostly padding, which must not count.
    settings = EvalDataSettings(batch_size=8, image_size=(64, 96), synthetic_examples=11,
                                overrides={"synthetic_indoor": {"size": (48, 80)}})
    for layout in LAYOUTS[variant]:
        mesh = make_mesh(layout, jax.devices()[: int(np.prod(layout))])
        evaluator = Evaluator(ZoeDepth(cfg), mesh, param_shardings(logical_axes(cfg), mesh))
        (result,) = evaluate_datasets(evaluator, params, ["synthetic_indoor"], settings, progress=False)
        print(json.dumps({"variant": variant, "layout": layout, "devices": len(mesh.devices.flat),
                          "metrics": result.metrics, "num_images": result.num_images}), flush=True)
