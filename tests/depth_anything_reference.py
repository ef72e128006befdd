"""The PyTorch reference of the Depth Anything tests: transformers' ``DepthAnythingForDepthEstimation`` built from a
zoejax head config and a small DINOv2 backbone, every tensor random (biases too, so that no term can hide)."""

import numpy as np
import torch
import transformers

from zoejax.conversion.depth_anything_head_table import hf_head_config


def build_hf_depth_anything(head, embed_dim: int = 24, depth: int = 4, num_heads: int = 2,
                            out_indices: tuple[int, ...] = (1, 2, 3, 4), seed: int = 0):
    """An eval-mode float32 ``DepthAnythingForDepthEstimation`` whose head is ``head`` (a
    ``DepthAnythingHeadConfig``) on a ``depth``-block DINOv2 of width ``embed_dim`` (patch 14, 518 pretraining)."""
    backbone = transformers.Dinov2Config(hidden_size=embed_dim, num_hidden_layers=depth,
                                         num_attention_heads=num_heads, intermediate_size=4 * embed_dim,
                                         image_size=518, patch_size=14, out_indices=list(out_indices),
                                         reshape_hidden_states=False, apply_layernorm=True)
    config = transformers.DepthAnythingConfig(backbone_config=backbone, **hf_head_config(head, embed_dim))
    torch.manual_seed(seed)
    model = transformers.DepthAnythingForDepthEstimation(config).eval()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            fan_in = int(np.prod(p.shape[1:])) if p.ndim > 1 else 1
            p.copy_(torch.randn(p.shape, generator=gen) * (0.5 / np.sqrt(fan_in) if p.ndim > 1 else 0.1))
    return model


def calibrate_output(model, taps: list[np.ndarray], grid: tuple[int, int]) -> None:
    """Make the last convolution's output (before ReLU / Sigmoid) vary around zero with unit spread on these
    inputs. With random weights its input (after a ReLU) has a large positive mean, so the output is nearly
    constant: a saturated, all-zero or constant output would compare nothing, and removing the mean with the bias
    would cancel digits. The weights are projected orthogonal to the mean input instead, then scaled."""
    seen = []
    hook = model.head.conv3.register_forward_hook(lambda module, args, out: seen.append(args[0]))
    run_neck_and_head(model, taps, grid)
    hook.remove()
    calibrate_last_conv(model, seen[0])


def calibrate_last_conv(model, conv3_input: torch.Tensor) -> torch.Tensor:
    """``calibrate_output`` from the last convolution's input (B, C, H, W); returns the head's new output, the
    depth (B, H, W), so that a caller holding that input needs no second forward."""
    x = conv3_input.double()
    mean = x.mean(dim=(0, 2, 3))
    with torch.no_grad():
        w = model.head.conv3.weight[0, :, 0, 0].double()
        w = w - (w @ mean) / (mean @ mean) * mean
        out = torch.einsum("c,bchw->bhw", w, x)
        model.head.conv3.weight[0, :, 0, 0] = (w / out.std()).float()
        model.head.conv3.bias.zero_()
        depth = model.head.activation2(model.head.conv3(conv3_input)) * model.head.max_depth
    return depth.squeeze(1)


def state_dict_numpy(model) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}


def run_neck_and_head(model, taps: list[np.ndarray], grid: tuple[int, int]) -> dict[str, np.ndarray]:
    """The reference's neck and head on given backbone feature maps ((B, 1+N, D) each): the fusion outputs
    r4..r1, the head's 32-channel map after its ReLU (out_conv; all NHWC) and the depth (B, H, W)."""
    seen = []
    hook = model.head.activation1.register_forward_hook(lambda module, args, out: seen.append(out))
    with torch.no_grad():
        hidden = [torch.from_numpy(np.asarray(t)) for t in taps]
        fused = model.neck(hidden, grid[0], grid[1])
        depth = model.head(fused, grid[0], grid[1])
    hook.remove()
    out = {f"r{4 - i}": f.permute(0, 2, 3, 1).numpy() for i, f in enumerate(fused)}
    out["out_conv"] = seen[0].permute(0, 2, 3, 1).numpy()
    out["depth"] = depth.numpy()
    return out
