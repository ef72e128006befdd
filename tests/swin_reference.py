"""PyTorch references for the Swin backbones: timm's SwinTransformer / SwinTransformerV2 built like a zoejax
``SwinConfig`` with random, non-trivial weights, and a transformers ZoeDepth whose backbone is that timm model
(its decoder and heads are the reference of the BEiT parity tests; for a hierarchical backbone it has no
reassemble stage, as MiDaS). Weights reach zoejax through the converter tables, so conversion is tested too.
"""

from __future__ import annotations

import dataclasses
import functools
import re

import numpy as np
import torch
from timm_import import import_timm_swin
from torch_reference import state_dict_numpy
from transformers import Swinv2Config, ZoeDepthForDepthEstimation
from transformers import ZoeDepthConfig as HFZoeDepthConfig
from transformers.modeling_outputs import BackboneOutput

from zoejax.conversion.apply import state_dict_to_params
from zoejax.conversion.hf_config import hf_config_kwargs
from zoejax.conversion.hf_table import hf_table
from zoejax.conversion.swin_table import swin_encoder_entries
from zoejax.conversion.table import Table
from zoejax.models import presets
from zoejax.models.backbones.swin_encoder import SwinConfig
from zoejax.models.config import ZoeDepthConfig
from zoejax.models.init import param_shapes


def timm_swin(bc: SwinConfig, seed: int = 0, strict_img_size: bool = True, clamp_head: bool = False) -> torch.nn.Module:
    """timm model equal in architecture to ``bc`` (eval mode, random weights; ``strict_img_size=False`` lets it
    take other input sizes with a per-call shifted-window mask, padding stage grids to window multiples)."""
    kwargs = dict(img_size=bc.img_size, patch_size=bc.patch_size, embed_dim=bc.embed_dim, depths=bc.depths,
                  num_heads=bc.num_heads, window_size=bc.window_size, mlp_ratio=bc.mlp_ratio,
                  drop_path_rate=0.0, strict_img_size=strict_img_size)
    swin_v1, swin_v2 = import_timm_swin()
    if bc.version == 2:
        model = swin_v2(pretrained_window_sizes=bc.pretrained_window_sizes, **kwargs)
    else:
        model = swin_v1(**kwargs)
    randomize(model.eval(), seed, clamp_head)
    return model


def randomize(model: torch.nn.Module, seed: int, clamp_head: bool = False) -> None:
    """Weights ~ N(0, 1/fan_in), norms near 1, biases and tables O(0.1..1), SwinV2 logit scales exp in (2.7, 12)
    (timm initialises log 10): every parameter matters for the outputs.

    ``clamp_head``: head 0 of every block gets a logit scale above the log(100) clamp. Its cosine attention is then
    near one-hot and float32 rounding alone makes timm and zoejax differ by ~1e-4 after four stages (both are
    equally far from the float64 result), so that case is checked in float64.
    """
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("logit_scale"):
                p.copy_(torch.rand(p.shape, generator=gen) * 1.5 + 1.0)
                if clamp_head:
                    p[0] = 5.0
            elif "relative_position_bias_table" in name:
                p.copy_(torch.randn(p.shape, generator=gen))
            elif p.ndim >= 2:
                p.copy_(torch.randn(p.shape, generator=gen) / np.sqrt(int(np.prod(p.shape[1:]))))
            elif "norm" in name:
                base = 1.0 if name.endswith("weight") else 0.0
                p.copy_(base + 0.1 * torch.randn(p.shape, generator=gen))
            else:
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))


def timm_to_release_keys(state: dict, prefix: str = "pretrained.model.") -> dict:
    """A timm >= 0.9 Swin/SwinV2 state dict renamed to the timm 0.6.12 layout of the MiDaS releases, prefixed:
    ``layers.{s}.downsample`` (start of stage s) becomes ``layers.{s-1}.downsample`` and ``head.fc`` ``head``."""
    out = {}
    for key, value in state.items():
        key = re.sub(r"^layers\.(\d+)\.downsample\.", lambda m: f"layers.{int(m.group(1)) - 1}.downsample.", key)
        key = re.sub(r"^head\.fc\.", "head.", key)
        out[prefix + key] = value
    return out


def hf_decoder_head_table(cfg: ZoeDepthConfig) -> Table:
    """The HF ``neck.convs`` / ``neck.fusion_stage``, ``relative_head`` and ``metric_head`` entries of ``cfg``
    without any backbone or reassemble entries: the layout of an HF ZoeDepth whose backbone is hierarchical (its
    reassemble stage is ``None``). Taken from the HF table of the same decoder and heads on a BEiT backbone."""
    beit = hf_table(dataclasses.replace(cfg, backbone=presets.zoed_n("tiny").backbone))
    backbone = ("backbone.", "neck.reassemble_stage.")
    return Table(entries=[e for e in beit.entries if not e.torch_keys[0].startswith(backbone)],
                 extras={k: v for k, v in beit.extras.items() if not k.startswith(backbone)},
                 buffers={k: v for k, v in beit.buffers.items() if not k.startswith(backbone)})


RELEASE_BUFFERS = ("relative_position_index", "relative_coords_table", "attn_mask")


def release_state_dict(model: torch.nn.Module, prefix: str = "pretrained.model.",
                       buffers: bool = True) -> dict[str, np.ndarray]:
    """The timm model's state dict in the MiDaS release (timm 0.6.12) key layout, with the buffers timm 0.6.12
    saved (timm >= 0.9 computes the same values but no longer saves them) unless ``buffers=False``."""
    state = state_dict_numpy(model)
    if buffers:
        state.update({k: v.detach().cpu().numpy() for k, v in model.named_buffers()
                      if v is not None and k.rsplit(".", 1)[-1] in RELEASE_BUFFERS})
    return timm_to_release_keys(state, prefix)


def release_shapes(bc: SwinConfig, prefix: str = "pretrained.model.") -> dict[str, tuple[int, ...]]:
    """Key -> shape of a full-size encoder in the release layout, from a timm model on the meta device."""
    swin_v1, swin_v2 = import_timm_swin()
    kwargs = dict(img_size=bc.img_size, patch_size=bc.patch_size, embed_dim=bc.embed_dim, depths=bc.depths,
                  num_heads=bc.num_heads, window_size=bc.window_size, device="meta")
    with torch.device("meta"):
        model = swin_v2(pretrained_window_sizes=bc.pretrained_window_sizes, **kwargs) if bc.version == 2 \
            else swin_v1(**kwargs)
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    shapes.update({k: tuple(v.shape) for k, v in model.named_buffers()
                   if v is not None and k.rsplit(".", 1)[-1] in RELEASE_BUFFERS})
    renamed = timm_to_release_keys({k: k for k in shapes}, prefix)
    return {new: shapes[old] for new, old in renamed.items()}


def stage_taps(model: torch.nn.Module, bc: SwinConfig, images: np.ndarray) -> list[np.ndarray]:
    """The hooked blocks' outputs (NHWC, as timm >= 0.9 blocks emit them) for ``images`` (B, H, W, 3) in [-1, 1]."""
    return [t.permute(0, 2, 3, 1).numpy() for t in _taps(model, bc, torch.from_numpy(images).permute(0, 3, 1, 2))]


def _taps(model, bc: SwinConfig, pixels: torch.Tensor) -> list[torch.Tensor]:
    captured: list[torch.Tensor] = []
    handles = [model.layers[s].blocks[h].register_forward_hook(lambda _m, _i, out: captured.append(out))
               for s, h in enumerate(bc.hooks)]
    try:
        with torch.no_grad():
            model.forward_features(pixels)
    finally:
        for h in handles:
            h.remove()
    return [t.permute(0, 3, 1, 2) for t in captured]  # NCHW, as MiDaS' act_postprocess gives them


class TimmBackbone(torch.nn.Module):
    """Stands in for the HF backbone: ``feature_maps`` are the timm model's hooked stage outputs (NCHW)."""

    def __init__(self, model: torch.nn.Module, bc: SwinConfig):
        super().__init__()
        self.model, self.bc = model, bc

    def forward_with_filtered_kwargs(self, pixel_values, **_):
        return self(pixel_values)

    def forward(self, pixel_values):
        return BackboneOutput(feature_maps=tuple(_taps(self.model, self.bc, pixel_values)))


def zoedepth_reference(cfg: ZoeDepthConfig, seed: int = 0, strict_img_size: bool = True):
    """(transformers ZoeDepth with the timm Swin as backbone, zoejax params converted from it)."""
    from torch_reference import randomize_hf

    bc = cfg.backbone
    # The HF config's backbone only decides the neck: "swinv2" means no reassemble stage.
    beit_like = dataclasses.replace(cfg, backbone=presets.BACKBONES["tiny"][0])
    kwargs = hf_config_kwargs(beit_like)
    kwargs["backbone_config"] = Swinv2Config(image_size=bc.img_size[0], patch_size=bc.patch_size,
                                             embed_dim=bc.embed_dim, depths=[1, 1, 1, 1],
                                             num_heads=list(bc.num_heads), out_features=["stage1", "stage2",
                                                                                         "stage3", "stage4"])
    model = ZoeDepthForDepthEstimation(HFZoeDepthConfig(**kwargs)).eval()
    randomize_hf(model, seed)
    model.backbone = TimmBackbone(timm_swin(bc, seed + 1, strict_img_size), bc)
    assert model.neck.reassemble_stage is None

    shapes = param_shapes(cfg)
    enc_table = Table()
    swin_encoder_entries(enc_table, bc, "pretrained.model")
    encoder = state_dict_to_params(release_state_dict(model.backbone.model), enc_table,
                                   {"core": {"pretrained": shapes["core"]["pretrained"]}}).params
    rest_state = {k: v for k, v in state_dict_numpy(model).items() if not k.startswith("backbone.")}
    rest = state_dict_to_params(rest_state, hf_decoder_head_table(cfg),
                                {"core": {"scratch": shapes["core"]["scratch"]},
                                 "metric_head": shapes["metric_head"]}).params
    params = {"core": {"pretrained": encoder["core"]["pretrained"], "scratch": rest["core"]["scratch"]},
              "metric_head": rest["metric_head"]}
    return model, params


@functools.cache
def zoed_n_shapes(name: str):
    """``param_shapes(presets.zoed_n(name))`` (jax.eval_shape, nothing allocated), shared by the Swin test files."""
    return param_shapes(presets.zoed_n(name))
