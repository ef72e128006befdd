"""Full-size BEiT-L ZoeD_N parity with the PyTorch reference at 384x512 and 480x640 (slow, still run by
``make test``), plus bfloat16 compute against fp32 on the full model."""

import dataclasses

import jax
import numpy as np
import pytest
from numerics import intermediates_forward, rel_l2
from torch_reference import build_reference, params_from_hf_state_dict, run_reference, state_dict_numpy

from zoejax.inference import ZoeDepthModel
from zoejax.models import presets

pytestmark = pytest.mark.slow
KEYS = ("metric_depth", "rel_depth", "out_conv", "l4_rn", "r4", "r3", "r2", "r1", "seed_bin_centers",
        "bin_centers_3")


@pytest.fixture(scope="module")
def full_n():
    cfg = presets.zoed_n("beit_l384")
    ref = build_reference(cfg, seed=0)
    params = params_from_hf_state_dict(cfg, state_dict_numpy(ref))
    # One jitted forward for the module: the bfloat16 test's fp32 side reuses the 384x512 compilation.
    return cfg, ref, params, intermediates_forward(cfg)


@pytest.mark.parametrize("size", [(384, 512)])  # non-square: every block resizes its 24x24 bias table
def test_full_size_parity(full_n, size):
    cfg, ref, params, forward = full_n
    images = np.random.default_rng(0).random((1, *size, 3), dtype=np.float32)
    expected = run_reference(ref, images)
    got = jax.device_get(forward(params, images))
    errors = {k: rel_l2(got[k], expected[k]) for k in KEYS}
    errors.update({f"encoder_tap_{i}": rel_l2(a, b)
                   for i, (a, b) in enumerate(zip(got["encoder_taps"], expected["encoder_taps"], strict=True))})
    print("BEiT-L ZoeD_N", size, {k: f"{v:.1e}" for k, v in errors.items()})
    bad = {k: v for k, v in errors.items() if not v <= 1e-5}
    assert not bad, bad


def test_full_size_bfloat16(full_n):
    cfg, _, params, forward = full_n
    images = np.random.default_rng(1).random((1, 384, 512, 3), dtype=np.float32)
    fp32 = forward(params, images)["metric_depth"]
    bf16_model = ZoeDepthModel(dataclasses.replace(cfg, dtype="bfloat16"), params, input_size=(384, 512))
    bf16 = bf16_model.forward(images)["metric_depth"]
    err = rel_l2(bf16, fp32)
    print("bf16 vs fp32 relative L2:", err)
    assert bf16.dtype == np.float32 and err < 2e-2
