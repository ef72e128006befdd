"""PyTorch references for the Depth Anything entries of ``backbones.py``, with the same random weights on both sides.

* ``da2_vitl``: Depth Anything V2 Large, relative. transformers' ``DepthAnythingForDepthEstimation`` with the
  zoejax preset's config (``depth_anything_table.hf_config_dict``); zoejax gets its weights through the
  transformers table (``depth_anything_table.hf_table``), as ``tests/test_depth_anything.py`` does.
* ``da1_metric_n``: Depth Anything V1 metric (indoor): ZoeDepth's ZoeD_N metric head on DINOv2-L + the Depth
  Anything DPT head. transformers has no such model, and its ``ZoeDepthForDepthEstimation`` with a DINOv2 backbone
  is *not* one: its fusion layers always upsample by 2 (Depth Anything's resize to the next map's exact size) and
  its relative head upsamples by 2 (Depth Anything's to 14 x the token grid), so at 518x686 (a 37x49 grid) its maps
  are 38x50 ... 592x784 where Depth Anything's are 37x49 ... 518x686. The reference is composed from transformers'
  parts instead, as the official model composes them: ``DepthAnythingForDepthEstimation`` (V1 taps, relative) as
  the core, and ``ZoeDepthMetricDepthEstimationHead`` fed what the official ``DepthAnythingCore`` hooks, i.e.
  ``out_conv`` (the head's 32-channel map after its ReLU), ``l4_rn`` (the last reassembled map after its 3x3
  conv), the fusion outputs r4..r1 and the relative depth. Each part is the one zoejax's parity tests check
  against (tests/test_depth_anything.py, tests/test_parity_hf.py), tests/test_da1_metric.py checks that zoejax
  composes them in the same way, and tests/test_benchmark_backbones.py compares this reference with zoejax's DA1
  metric stage by stage (out_conv, l4_rn, r4..r1, relative and metric depth).

The transformers DINOv2 resizes its position table with its own rule, so the zoejax configs here use it too
(``dinov2_table.for_transformers``); the cost is the same as with the original rule.
"""

from __future__ import annotations

import dataclasses

import common  # noqa: F401 - puts tests/ on sys.path
import numpy as np
import torch
import transformers
from depth_anything_reference import calibrate_last_conv
from transformers.modeling_outputs import DepthEstimatorOutput
from transformers.models.zoedepth.modeling_zoedepth import ZoeDepthMetricDepthEstimationHead

from zoejax.conversion.apply import state_dict_to_params
from zoejax.conversion.depth_anything_table import hf_config_dict, hf_table
from zoejax.conversion.dinov2_table import for_transformers
from zoejax.conversion.hf_config import hf_head_kwargs
from zoejax.conversion.hf_table import hf_metric_head_table
from zoejax.models import presets
from zoejax.models.config import ZoeDepthConfig
from zoejax.models.depth_anything import IMAGENET_MEAN, IMAGENET_STD
from zoejax.models.depth_anything_config import PRESETS, DepthAnythingConfig
from zoejax.models.depth_anything_core import head_config
from zoejax.models.init import param_shapes

# name -> (full-size config, the same model on the registry's tiny DINOv2 for checking the script).
ENTRIES = {
    "da2_vitl": (lambda: PRESETS["da2_relative_vitl"], lambda: PRESETS["da_tiny_relative"]),
    "da1_metric_n": (presets.da1_metric_n, lambda: presets.da1_metric_n(presets.DA1_METRIC_TINY)),
}
# The small image the last convolution is calibrated on (``_calibrate``; 9x12 tokens: cheap even for ViT-L).
CALIBRATION_SIZE = (126, 168)
# At the fan-in scale the metric head's bins and probabilities come out nearly uniform: a metric depth constant to
# ~1e-3 relative, so comparing outputs would compare one number. Four times the weights spread it over pixels
# (std / mean 3% for the full-size head at 126x168, 15% for the tiny fixture's at 364x490).
METRIC_HEAD_GAIN = 4.0
# Depth Anything's own sizes are multiples of the patch (14): 518 is its training size, 686 ~ 518 * 4/3.
DEFAULT_SIZE = (518, 686)


def config_of(name: str, tiny: bool = False) -> DepthAnythingConfig | ZoeDepthConfig:
    """The zoejax config of entry ``name`` with transformers' position-table resize (see the module docstring)."""
    cfg = ENTRIES[name][1 if tiny else 0]()
    return dataclasses.replace(cfg, backbone=for_transformers(cfg.backbone))


def is_depth_anything(cfg) -> bool:
    """Whether ``cfg`` is one of these entries (a Depth Anything model or ZoeDepth on the Depth Anything core)."""
    return isinstance(cfg, DepthAnythingConfig) or getattr(cfg, "core", None) == "depth_anything"


def _core_config(cfg) -> DepthAnythingConfig:
    """The Depth Anything model whose backbone and DPT head ``cfg`` runs (itself, or a DA1 metric model's core)."""
    return cfg if isinstance(cfg, DepthAnythingConfig) else DepthAnythingConfig(backbone=cfg.backbone,
                                                                               head=head_config(cfg))


def _randomise(model: torch.nn.Module, gen: torch.Generator, gain: float = 1.0) -> None:
    """Random, non-trivial values for every parameter: fan-in-scaled weights (times ``gain``), a position table and
    class token worth resizing, norms around one, small biases (as tests/test_depth_anything.py's reference)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("position_embeddings") or "cls_token" in name:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
            elif p.ndim > 1:
                p.copy_(torch.randn(p.shape, generator=gen) * (0.5 * gain / np.sqrt(np.prod(p.shape[1:]))))
            elif "norm" in name and name.endswith("weight"):
                p.copy_(1 + 0.1 * torch.randn(p.shape, generator=gen))
            else:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.1)


def _hf_depth_anything(cfg: DepthAnythingConfig, gen: torch.Generator):
    kwargs = hf_config_dict(cfg)
    cls, backbone = kwargs.pop("backbone_config")
    config = transformers.DepthAnythingConfig(backbone_config=getattr(transformers, cls)(**backbone), **kwargs)
    with torch.device("meta"):  # no transformers initialisation of 300M parameters that are overwritten anyway
        model = transformers.DepthAnythingForDepthEstimation(config).eval()
    model = model.to_empty(device="cpu")
    _randomise(model, gen)
    assert not list(model.buffers())  # nothing left unset by to_empty
    return model


class DA1MetricReference(torch.nn.Module):
    """Depth Anything V1 metric from transformers' parts (module docstring): ``pixel_values`` (B, 3, H, W),
    ImageNet-normalised -> ``predicted_depth`` (B, H, W) metres. The core's intermediate maps are taken with
    forward hooks, as the official ``DepthAnythingCore`` takes them."""

    def __init__(self, core: transformers.DepthAnythingForDepthEstimation,
                 metric_head: ZoeDepthMetricDepthEstimationHead):
        super().__init__()
        self.core, self.metric_head = core, metric_head
        self._seen: dict[str, object] = {}
        keep = self._seen.__setitem__
        core.neck.convs[-1].register_forward_hook(lambda m, a, out: keep("l4_rn", out))
        core.neck.register_forward_hook(lambda m, a, out: keep("fused", out))
        core.head.activation1.register_forward_hook(lambda m, a, out: keep("out_conv", out))

    def forward(self, pixel_values: torch.Tensor) -> DepthEstimatorOutput:
        relative = self.core(pixel_values=pixel_values).predicted_depth
        seen = self._seen
        metric, _ = self.metric_head(outconv_activation=seen["out_conv"], bottleneck=seen["l4_rn"],
                                     feature_blocks=seen["fused"], relative_depth=relative)
        seen.clear()
        return DepthEstimatorOutput(predicted_depth=metric.squeeze(1))


def _calibrate(core: transformers.DepthAnythingForDepthEstimation, seed: int) -> None:
    """Random weights leave the last convolution's output (before its ReLU) with the sign of one constant, so the
    relative depth is all zero or nearly constant and comparing outputs would compare nothing; its weights are
    reset to give a spread around zero (``calibrate_last_conv``) on one small fixed image."""
    seen = []
    hook = core.head.conv3.register_forward_hook(lambda module, args, out: seen.append(args[0]))
    images = np.random.default_rng(seed).random((1, *CALIBRATION_SIZE, 3), dtype=np.float32)
    with torch.no_grad():
        core(pixel_values=pixel_values(images))
    hook.remove()
    calibrate_last_conv(core, seen[0])


def pixel_values(images: np.ndarray) -> torch.Tensor:
    """(B, H, W, 3) in [0, 1] -> the references' input (B, 3, H, W), normalised by the ImageNet statistics."""
    mean, std = (torch.tensor(v, dtype=torch.float32).view(1, 3, 1, 1) for v in (IMAGENET_MEAN, IMAGENET_STD))
    return ((torch.from_numpy(images).permute(0, 3, 1, 2) - mean) / std).contiguous()


def build_reference(cfg, seed: int = 0) -> torch.nn.Module:
    """The eval-mode float32 PyTorch model of ``cfg`` (a ``config_of`` config), every parameter random from
    ``seed``; called with ``pixel_values`` (ImageNet-normalised), it returns an object with ``predicted_depth``."""
    gen = torch.Generator().manual_seed(seed)
    core = _hf_depth_anything(_core_config(cfg), gen)
    _calibrate(core, seed)
    if isinstance(cfg, DepthAnythingConfig):
        return core
    head = ZoeDepthMetricDepthEstimationHead(transformers.ZoeDepthConfig(**hf_head_kwargs(cfg))).eval()
    _randomise(head, gen, gain=METRIC_HEAD_GAIN)
    return DA1MetricReference(core, head).eval()


def params_of(cfg, model: torch.nn.Module) -> dict:
    """zoejax params of ``cfg`` holding ``model``'s weights, strictly converted by the transformers tables."""
    state = {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}
    shapes = param_shapes(cfg)
    if isinstance(cfg, DepthAnythingConfig):
        return state_dict_to_params(state, hf_table(cfg, "module"), shapes).params

    def part(prefix: str) -> dict:
        return {k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)}

    assert set(shapes) == {"core", "metric_head"}
    core = state_dict_to_params(part("core."), hf_table(_core_config(cfg), "module"), shapes["core"]).params
    head = state_dict_to_params({k: v for k, v in state.items() if k.startswith("metric_head.")},
                                hf_metric_head_table(cfg), {"metric_head": shapes["metric_head"]}).params
    return {"core": core, **head}


def reference_and_params(cfg, seed: int = 0) -> tuple[torch.nn.Module, dict]:
    """(PyTorch reference in eval mode, zoejax params with its weights) for ``cfg``."""
    model = build_reference(cfg, seed)
    return model, params_of(cfg, model)
