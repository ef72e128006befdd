"""ONNX Runtime against zoejax: the exported ``predict`` program (``zoejax-convert --to onnx``) run by ONNX Runtime's
CPU provider, and the same model's ``predict_batch`` compiled by XLA for this machine, on the same images in one run.

  python benchmarks/onnx_runtime.py --variant zoed_n --backbone swin2_t256 --size 480x640
  python benchmarks/onnx_runtime.py --variant zoed_nk --backbone tiny --size 240x320 --runs 10
  python benchmarks/onnx_runtime.py --variant da --backbone da2_metric_hypersim_vits --size 480x640

Random weights (nothing is downloaded; the arithmetic is the same as a released checkpoint's). Prints one table row
per model: the export's time and file size, the largest relative error per pixel of ONNX Runtime's depth against
zoejax's (and whether ZoeD_NK's router picked the same head), and the median latency of each, batch 1, after a
warm-up call. The last line: ``onnx_runtime: variant=V backbone=B size=HxW ort_ms=X zoejax_ms=Y max_rel_err=Z``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from common import machine_line, median  # noqa: E402


def build_model(variant: str, backbone: str, seed: int):
    """A random-weight model: ZoeDepth ``variant`` on encoder preset ``backbone``, or for ``variant="da"`` the
    Depth Anything preset named by ``backbone`` (e.g. da2_metric_hypersim_vitl, da_tiny_metric)."""
    if variant == "da":
        import jax

        from zoejax.conversion.depth_anything_convert import param_shapes
        from zoejax.inference_depth_anything import DepthAnythingModel
        from zoejax.models.depth_anything_config import preset

        cfg = preset(backbone)
        rng = np.random.default_rng(seed)
        # std 0.02 as a trained ViT's scale; the metric head's sigmoid keeps the depth away from 0
        params = jax.tree_util.tree_map(lambda s: (0.02 * rng.standard_normal(s.shape)).astype(np.float32),
                                        param_shapes(cfg))
        return DepthAnythingModel(cfg, params)
    from zoejax.inference import ZoeDepthModel
    from zoejax.models import presets
    from zoejax.models.init import init_params

    cfg = presets.VARIANTS[variant](backbone)
    return ZoeDepthModel(cfg, init_params(cfg, seed))


def compare(variant: str, backbone: str, height: int, width: int, runs: int, threads: int, seed: int = 0) -> dict:
    import onnxruntime as ort

    from zoejax.serving.onnx import export_onnx

    model = build_model(variant, backbone, seed)
    images = np.random.default_rng(seed).uniform(0, 1, (1, height, width, 3)).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.onnx"
        t0 = time.perf_counter()
        export_onnx(model, path, height, width, batch_size=1)
        export_s = time.perf_counter() - t0
        size_mb = path.stat().st_size / 1e6
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def ort_call():
        return session.run(None, {"images": images})

    def jax_call():
        return model.predict_batch(images)

    ort_out, jax_out = ort_call(), jax_call()  # warm-up: zoejax compiles here
    ort_ms = median([_ms(ort_call) for _ in range(runs)])
    jax_ms = median([_ms(jax_call) for _ in range(runs)])
    want = np.asarray(jax_out.depth)
    # relative maps end in a ReLU: their exact zeros are measured against 1e-6 of the map's maximum
    rel = float(np.max(np.abs(ort_out[0] - want) / np.maximum(np.abs(want), 1e-6 * np.abs(want).max())))
    same_domain = None
    if len(ort_out) > 1:
        same_domain = bool(np.array_equal(ort_out[1], np.asarray(jax_out.domain)))
    return {"variant": variant, "backbone": backbone, "size": f"{height}x{width}", "export_s": export_s,
            "file_mb": size_mb, "max_rel_err": rel, "same_domain": same_domain, "ort_ms": ort_ms,
            "zoejax_ms": jax_ms}


def _ms(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return 1000 * (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", default="zoed_n", choices=("zoed_n", "zoed_k", "zoed_nk", "da"),
                        help="a ZoeDepth variant, or da: the Depth Anything preset named by --backbone")
    parser.add_argument("--backbone", default="swin2_t256",
                        help="encoder preset (beit_l384, swin2_t256, tiny, ...); with --variant da a Depth Anything "
                        "preset (da2_metric_hypersim_vitl, da_tiny_metric, ...)")
    parser.add_argument("--size", default="480x640", help="input HxW in pixels")
    parser.add_argument("--runs", type=int, default=5, help="timed calls of each, after one warm-up call")
    parser.add_argument("--threads", type=int, default=0, help="ONNX Runtime intra-op threads (0: its default)")
    args = parser.parse_args(argv)
    height, width = (int(v) for v in args.size.lower().split("x"))
    print(machine_line())
    r = compare(args.variant, args.backbone, height, width, args.runs, args.threads)
    domain = "" if r["same_domain"] is None else f" | {'same' if r['same_domain'] else 'DIFFERENT'}"
    print("| model | input | export s | file MB | max rel err | ORT ms | zoejax ms | ORT / zoejax |"
          + (" router |" if domain else ""))
    print(f"| {r['variant']} {r['backbone']} | {r['size']} | {r['export_s']:.0f} | {r['file_mb']:.0f} | "
          f"{r['max_rel_err']:.1e} | {r['ort_ms']:.0f} | {r['zoejax_ms']:.0f} | {r['ort_ms'] / r['zoejax_ms']:.2f}x"
          f"{domain} |")
    print(f"onnx_runtime: variant={r['variant']} backbone={r['backbone']} size={r['size']} ort_ms={r['ort_ms']:.1f} "
          f"zoejax_ms={r['zoejax_ms']:.1f} max_rel_err={r['max_rel_err']:.2e}")


if __name__ == "__main__":
    main()
