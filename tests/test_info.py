"""``zoejax-info`` on every model family the configs build (``zoejax.models.family``): ZoeDepth on the Depth
Anything core (DA1 metric), Depth Anything V2 metric and relative, and relative MiDaS.

The full-size configs are summarised without FLOPs (parameter shapes only: one abstract trace, ~2 s each) and their
counts checked against the official models'; the FLOP count (one lowering, no compile) runs on the tiny fixtures.
"""

import importlib
import re

import pytest

from zoejax.cli.config_loading import model_config
from zoejax.cli.info import forward_flops, summary_lines
from zoejax.models.init import count_params, param_shapes

# The Depth Anything core's official tensors that zoejax keeps as extras, not parameters: DINOv2's mask_token (1 x
# 1024) and refinenet4's never-called first residual unit (two 3x3 convs of the 256-wide fusion).
UNUSED_DA_VITL = 1024 + 2 * (256 * 256 * 9 + 256)
DINOV2_L = 304_367_616  # the encoder without its mask token
DA_HEAD_L = 29_766_849  # the DPT head (reassemble + scratch) without the unused unit
ZOED_HEAD = 478_145  # ZoeD_N's metric head

# config file -> (zoejax's parameters, the official count, {part: parameters}, network input, output).
FULL_SIZE = {
    # DA1 metric indoor (depth_anything_metric_depth_indoor.pt): count_parameters(include_all=True) of the official
    # model is 335,793,794 (tests/test_da1_metric.py).
    "depth_anything_metric_n": (334_612_610, 335_793_794, {
        "encoder (core/pretrained)": DINOV2_L, "metric head (metric_head)": ZOED_HEAD}, (392, 518), "metric_depth"),
    # DA2 metric ViT-L: transformers' DepthAnythingForDepthEstimation has 335,315,649 (tests/test_depth_anything.py).
    "depth_anything_v2_metric_hypersim": (334_134_465, 335_315_649, {"encoder (pretrained)": DINOV2_L},
                                          (518, 518), "metric_depth"),
    "depth_anything_v2_metric_vkitti": (334_134_465, 335_315_649, {"encoder (pretrained)": DINOV2_L},
                                        (518, 518), "metric_depth"),
    # DA1 relative ViT-L (depth_anything_vitl14.pth): the same tensors as the V2 metric model (other taps, a ReLU).
    "depth_anything_relative": (334_134_465, 335_315_649, {"encoder (pretrained)": DINOV2_L}, (518, 518),
                                "relative_depth"),
    # MiDaS DPT_BEiT_L_384 as ZoeD_N's core: the ZoeD_N release's 344,816,746 less its metric head and the unused
    # 2,207,208 (classifier head, fc_norm, refinenet4's first unit; tests/test_model.py).
    "midas_relative": (344_816_746 - ZOED_HEAD - 2_207_208, None, {
        "encoder (core/pretrained/model)": 303_971_840}, (384, 384), "relative_depth"),
}


def _config(name: str, arg: str | None = None):
    return importlib.import_module(f"configs.{name}").get_config(*([arg] if arg else []))


def _parts(lines: list[str]) -> dict[str, int]:
    """{label: parameters} of the summary's indented part lines."""
    return {m[1]: int(m[2].replace(",", "")) for line in lines if (m := re.match(r"  (\S.*?)\s{2,}([\d,]+)$", line))}


@pytest.mark.parametrize("name", sorted(FULL_SIZE))
def test_full_size_configs_count_the_official_parameters(name):
    ours, official, parts, size, output = FULL_SIZE[name]
    config = _config(name)
    cfg = model_config(config)
    lines = summary_lines(cfg, tuple(config.input_size), flops=False)
    assert lines[-1] == f"params: {ours}"
    if official is not None:
        assert ours + (UNUSED_DA_VITL if name.startswith("depth_anything") else 0) == official
    got = _parts(lines)
    assert sum(got.values()) == ours  # the parts hold every parameter
    assert parts.items() <= got.items(), got
    if name.startswith("depth_anything"):  # reassemble + scratch: the Depth Anything DPT head
        assert sum(v for k, v in got.items() if "depth_head" in k) == DA_HEAD_L
    multiple = 32 if name == "midas_relative" else 14
    assert f"input: 1 x {size[0]} x {size[1]} x 3 (multiples of {multiple})" in lines
    assert any(line.startswith(f"output: {output} ") for line in lines)
    assert not any("FLOP" in line for line in lines)


@pytest.mark.parametrize("name,arg,depth_type,output,analytic", [
    ("depth_anything_metric_n", "dinov2_tiny", None, "metric_depth", "the Depth Anything core"),
    ("depth_anything_metric_nk", "dinov2_tiny", None, "metric_depth", "ZoeD_NK's router"),
    ("depth_anything_v2_metric_hypersim", "dinov2_tiny", None, "metric_depth", "the Depth Anything DPT head"),
    # A Depth Anything V2 relative model: the same config with the relative head.
    ("depth_anything_v2_metric_hypersim", "dinov2_tiny", "relative", "relative_depth", "the Depth Anything DPT head"),
    ("depth_anything_relative", "dinov2_tiny", None, "relative_depth", "the Depth Anything DPT head"),
    ("midas_relative", "tiny", None, "relative_depth", None),
])
def test_tiny_configs_count_flops_through_their_family(name, arg, depth_type, output, analytic):
    config = _config(name, arg)
    if depth_type:
        config.model.head.depth_type = depth_type
    cfg = model_config(config)
    size = tuple(config.input_size)
    lines = summary_lines(cfg, size)
    assert lines[-1] == f"params: {count_params(param_shapes(cfg))}"
    assert any(line.startswith(f"output: {output} ") for line in lines)
    (line,) = [x for x in lines if x.startswith("forward FLOPs: ")]
    counts = [float(n.replace(",", "")) for n in re.findall(r"([\d,.]+) MFLOP", line)]
    assert counts[0] > 0, line
    if analytic is None:  # relative MiDaS: the analytic count of ZoeD_N's core, near XLA's
        assert len(counts) == 2 and 0.95 < counts[0] / counts[1] < 1.05, line
    else:  # XLA's count alone, and why
        assert len(counts) == 1 and f"no analytic count for {analytic}" in line, line


def test_depth_anything_flops_scale_with_the_batch_and_the_input_multiple_is_14():
    config = _config("depth_anything_metric_n", "dinov2_tiny")
    cfg = model_config(config)
    one, two = forward_flops(cfg, (28, 42), 1), forward_flops(cfg, (28, 42), 2)
    assert 1.98 < two / one < 2.02  # per-image work; the position-table resize is the only shared part
    with pytest.raises(ValueError, match="multiples of 14"):
        summary_lines(cfg, (32, 32), flops=False)
    with pytest.raises(ValueError, match="multiples of 32"):
        summary_lines(model_config(_config("midas_relative", "tiny")), (28, 42), flops=False)
