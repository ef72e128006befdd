"""The PyTorch reference for parity tests: ``transformers``' ZoeDepth with random, non-trivial weights.

With BEiT ``layer_norm_eps=1e-6`` the transformers port computes the official ZoeDepth forward bit for bit
(architecture spec section 11), so it stands in for the official code without any download.
Intermediates are captured with forward hooks and returned NHWC to compare with zoejax directly.
"""

from __future__ import annotations

import numpy as np
import torch
from transformers import BeitConfig as HFBeitConfig
from transformers import ZoeDepthConfig as HFZoeDepthConfig
from transformers import ZoeDepthForDepthEstimation

from zoejax.conversion.apply import state_dict_to_params
from zoejax.conversion.hf_config import hf_config_kwargs
from zoejax.conversion.hf_table import hf_table
from zoejax.models.config import ZoeDepthConfig
from zoejax.models.init import param_shapes


def build_reference(cfg: ZoeDepthConfig, seed: int = 0) -> ZoeDepthForDepthEstimation:
    """A transformers ZoeDepth equal in architecture to ``cfg``, with randomised weights (eval mode).

    HF initialises LayerScale to a constant, relative-position tables and biases to zero: random values
    everywhere make the parity test sensitive to every parameter and to the bias-table resize.
    """
    kwargs = hf_config_kwargs(cfg)
    backbone = HFBeitConfig(**kwargs.pop("backbone_config"))
    model = ZoeDepthForDepthEstimation(HFZoeDepthConfig(backbone_config=backbone, **kwargs)).eval()
    randomize_hf(model, seed)
    return model


def randomize_hf(model: torch.nn.Module, seed: int) -> None:
    """Random, non-trivial weights for every parameter of an HF ZoeDepth (in place)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim >= 2 and "relative_position_bias_table" not in name:
                fan_in = int(np.prod(p.shape[1:]))
                p.copy_(torch.randn(p.shape, generator=gen) / np.sqrt(fan_in))
            elif "relative_position_bias_table" in name:
                p.copy_(torch.randn(p.shape, generator=gen))  # a strong bias exercises the resize
            elif "lambda" in name:
                p.copy_(0.5 + 0.2 * torch.randn(p.shape, generator=gen))
            elif "norm" in name.split(".")[-2]:
                base = 1.0 if name.endswith("weight") else 0.0
                p.copy_(base + 0.1 * torch.randn(p.shape, generator=gen))
            else:
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))


def state_dict_numpy(model: torch.nn.Module) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}


def params_from_hf_state_dict(cfg: ZoeDepthConfig, state: dict[str, np.ndarray],
                              source: str = "HF state dict") -> dict:
    """zoejax params of a transformers ZoeDepth state dict (5.x module names), strictly converted by the HF table
    (``ConversionError`` lists every missing, unexpected or mis-shaped tensor)."""
    return state_dict_to_params(state, hf_table(cfg), param_shapes(cfg), source).params


def _nhwc(t: torch.Tensor) -> np.ndarray:
    return t.detach().permute(0, 2, 3, 1).cpu().numpy()


def run_reference(model: ZoeDepthForDepthEstimation, images: np.ndarray) -> dict[str, np.ndarray]:
    """Forward ``images`` (B, H, W, 3) in [0, 1] through the reference; outputs and intermediates NHWC.

    Keys match zoejax's ``return_intermediates`` output: metric_depth, rel_depth, domain_logits (NK),
    encoder_taps (list), l4_rn, r4..r1, out_conv, seed_bin_centers, bin_centers_{0..3}.
    """
    captured: dict[str, object] = {}
    hooks = []

    def keep(name):
        def hook(_module, _inputs, output):
            captured[name] = output
        return hook

    head = model.metric_head
    hooks.append(model.neck.register_forward_hook(keep("neck")))
    hooks.append(model.relative_head.register_forward_hook(keep("relative_head")))
    hooks.append(model.backbone.register_forward_hook(keep("backbone")))
    if hasattr(head, "seed_bin_regressor"):
        hooks.append(head.seed_bin_regressor.register_forward_hook(keep("seed")))
        attractors = list(head.attractors)
    else:  # NK: hook every domain; the routed one is kept below
        for name, reg in head.seed_bin_regressors.items():
            hooks.append(reg.register_forward_hook(keep(f"seed_{name}")))
        attractors = None
        for name, layers in head.attractors.items():
            for i, layer in enumerate(layers):
                hooks.append(layer.register_forward_hook(keep(f"attractor_{name}_{i}")))
    if attractors is not None:
        for i, layer in enumerate(attractors):
            hooks.append(layer.register_forward_hook(keep(f"attractor_{i}")))
    pixel_values = (torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2) - 0.5) / 0.5
    try:
        with torch.no_grad():
            out = model(pixel_values=pixel_values)
    finally:
        for h in hooks:
            h.remove()

    fused, l4_rn = captured["neck"]
    rel, out_conv = captured["relative_head"]
    result = {
        "metric_depth": out.predicted_depth.numpy(),
        "rel_depth": rel.numpy(),
        "out_conv": _nhwc(out_conv),
        "l4_rn": _nhwc(l4_rn),
        "encoder_taps": [t.numpy() for t in captured["backbone"].feature_maps],
    }
    for name, t in zip(("r4", "r3", "r2", "r1"), fused, strict=True):
        result[name] = _nhwc(t)
    if out.domain_logits is not None:
        result["domain_logits"] = out.domain_logits.numpy()
        domain = [c["name"] for c in model.config.bin_configurations][
            int(torch.argmax(torch.softmax(out.domain_logits.sum(0), -1)))]
        result["seed_bin_centers"] = _nhwc(captured[f"seed_{domain}"][1])
        for i in range(4):
            result[f"bin_centers_{i}"] = _nhwc(captured[f"attractor_{domain}_{i}"][1])
    else:
        result["seed_bin_centers"] = _nhwc(captured["seed"][1])
        for i in range(4):
            result[f"bin_centers_{i}"] = _nhwc(captured[f"attractor_{i}"][1])
    return result
