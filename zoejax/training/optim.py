"""AdamW with the official parameter groups and learning-rate schedules (training spec section 4).

Groups (by parameter path, an explicit function, no string registry):
  encoder  core/pretrained/* (ZoeDepth, relative DPT), pretrained/* (Depth Anything), except the position tables
           below                                                       lr / encoder_lr_factor
  rel_pos  the encoder's tables with "relative_position" (BEiT, Swin);  lr / pos_enc_lr_factor
           its pos_embed (DINOv2, whose official ``get_rel_pos_params`` matches "pos_embed")
  decoder  core/scratch/* (MiDaS core), core/depth_head/* (Depth Anything core), depth_head/* (Depth Anything)
                                                                       lr / midas_lr_factor
  head     everything else (metric head, router)                       lr
Schedules (``OptimConfig.schedule``, one row each in ``SCHEDULES``): "onecycle" follows PyTorch's ``OneCycleLR``
exactly (phase ends at pct*T - 1 and T - 1, cosine annealing) and, with ``cycle_momentum``, schedules Adam's b1
between 0.95 and 0.85 as PyTorch does; "poly" is Depth Anything V2's metric training (see ``poly``). Gradients are
clipped by global norm (0.1; 0 or None: not clipped); a non-finite gradient skips the update (counted in the
optimizer state), and the training loop stops the run after ``max_consecutive_nonfinite`` of them in a row.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax
from flax.traverse_util import path_aware_map

from zoejax.training.adamw import fused_adamw

GROUPS = ("encoder", "rel_pos", "decoder", "head")


@dataclasses.dataclass(frozen=True)
class OptimConfig:
    """Optimizer hyperparameters; defaults are the official ZoeD_N recipe (NK: lr 2.512e-4, midas factor 10).

    ``schedule``: a key of ``SCHEDULES``; ``poly_power``: the exponent of "poly" (Depth Anything V2: 0.9).
    ``pct_start``, ``div_factor``, ``final_div_factor`` and the momentum fields shape "onecycle" only (with
    "poly", b1 is ``max_momentum`` unless ``cycle_momentum``).
    """

    total_steps: int
    schedule: str = "onecycle"
    poly_power: float = 0.9
    lr: float = 1.61e-4
    weight_decay: float = 0.01
    rel_pos_weight_decay: bool = True  # the official AdamW decays every parameter, position tables included
    encoder_lr_factor: float = 10.0
    pos_enc_lr_factor: float = 10.0
    midas_lr_factor: float = 1.0
    pct_start: float = 0.7
    div_factor: float = 1.0
    final_div_factor: float = 1e4
    cycle_momentum: bool = True
    base_momentum: float = 0.85
    max_momentum: float = 0.95
    b2: float = 0.999
    eps: float = 1e-8
    grad_clip_norm: float | None = 0.1
    accumulate_steps: int = 1
    max_consecutive_nonfinite: int = 100  # skipped (non-finite) updates in a row after which the run stops

    def __post_init__(self):
        if self.schedule not in SCHEDULES:
            raise ValueError(f"optim.schedule={self.schedule!r} is not one of {sorted(SCHEDULES)}")


# Where each model family keeps its encoder and its decoder (path prefixes in its params).
ENCODER_PREFIXES = (("core", "pretrained"), ("pretrained",))
DECODER_PREFIXES = (("core", "scratch"), ("core", "depth_head"), ("depth_head",))


def param_group(path: tuple[str, ...]) -> str:
    """The learning-rate group of a parameter path (see the module docstring)."""
    for prefix in ENCODER_PREFIXES:
        if path[:len(prefix)] == prefix:
            inner = path[len(prefix):]
            position = any("relative_position" in p for p in inner) or inner[:1] == ("pos_embed",)
            return "rel_pos" if position else "encoder"
    if any(path[:len(prefix)] == prefix for prefix in DECODER_PREFIXES):
        return "decoder"
    return "head"


def group_labels(params) -> dict:
    return path_aware_map(lambda path, _: param_group(tuple(path)), params)


def _cos_anneal(start: float, end: float, pct: jnp.ndarray) -> jnp.ndarray:
    return end + (start - end) / 2.0 * (jnp.cos(math.pi * pct) + 1.0)


def one_cycle(total_steps: int, start: float, peak: float, end: float, pct_start: float) -> Callable:
    """PyTorch OneCycleLR (two phases, cosine): value at optimizer step ``count`` (0-based)."""
    mid = float(pct_start * total_steps) - 1.0
    last = float(total_steps - 1)

    def schedule(count):
        step = jnp.asarray(count, jnp.float32)
        first = _cos_anneal(start, peak, step / jnp.maximum(mid, 1e-12))
        second = _cos_anneal(peak, end, (step - mid) / jnp.maximum(last - mid, 1e-12))
        return jnp.where(step <= mid, first, second)

    return schedule


def poly(total_steps: int, base: float, power: float) -> Callable:
    """Depth Anything V2's metric schedule (metric_depth/train.py): after the step of iteration i the rate is set to
    base * (1 - i / T)^power, so step 0 runs at ``base``, and step k >= 1 at base * (1 - (k - 1) / T)^power (its
    value one step late, as the official loop has it); clamped at 0 past T."""

    def schedule(count):
        done = jnp.maximum(jnp.asarray(count, jnp.float32) - 1.0, 0.0)
        return base * jnp.maximum(1.0 - done / float(total_steps), 0.0) ** power

    return schedule


def learning_rates(cfg: OptimConfig) -> dict[str, float]:
    return {"encoder": cfg.lr / cfg.encoder_lr_factor, "rel_pos": cfg.lr / cfg.pos_enc_lr_factor,
            "decoder": cfg.lr / cfg.midas_lr_factor, "head": cfg.lr}


def _one_cycle_of(cfg: OptimConfig, peak: float) -> Callable:
    initial = peak / cfg.div_factor
    return one_cycle(cfg.total_steps, initial, peak, initial / cfg.final_div_factor, cfg.pct_start)


# The learning-rate schedules: name -> (config, a group's peak rate) -> schedule of the optimizer step.
SCHEDULES: dict[str, Callable[[OptimConfig, float], Callable]] = {
    "onecycle": _one_cycle_of,
    "poly": lambda cfg, peak: poly(cfg.total_steps, peak, cfg.poly_power),
}


def lr_schedules(cfg: OptimConfig) -> dict[str, Callable]:
    return {group: SCHEDULES[cfg.schedule](cfg, peak) for group, peak in learning_rates(cfg).items()}


def b1_schedule(cfg: OptimConfig) -> Callable | float:
    """Adam's b1: cycled between max and base momentum over the OneCycle phases, or ``max_momentum``."""
    if not cfg.cycle_momentum:
        return cfg.max_momentum
    return one_cycle(cfg.total_steps, cfg.max_momentum, cfg.base_momentum, cfg.max_momentum, cfg.pct_start)


def make_optimizer(cfg: OptimConfig) -> optax.GradientTransformation:
    """Clip -> per-group AdamW (scheduled lr and b1) -> skip non-finite (``zoejax.training.adamw``, one fused
    transformation) -> optional accumulation."""
    if cfg.total_steps < 1:
        raise ValueError(f"total_steps must be positive, got {cfg.total_steps}")
    decays = {g: 0.0 if (g == "rel_pos" and not cfg.rel_pos_weight_decay) else cfg.weight_decay for g in GROUPS}
    tx = fused_adamw(group_labels, lr_schedules(cfg), decays, b1=b1_schedule(cfg), b2=cfg.b2, eps=cfg.eps,
                     clip_norm=cfg.grad_clip_norm or None)
    if cfg.accumulate_steps > 1:
        tx = optax.MultiSteps(tx, every_k_schedule=cfg.accumulate_steps)
    return tx


def _adamw_state(opt_state):
    return opt_state.inner_opt_state if isinstance(opt_state, optax.MultiStepsState) else opt_state


def nonfinite_count(opt_state) -> jax.Array:
    """Total skipped (non-finite) updates recorded in an optimizer state from ``make_optimizer``."""
    return _adamw_state(opt_state).total_notfinite


def consecutive_nonfinite_count(opt_state) -> jax.Array:
    """Skipped (non-finite) updates in a row up to now, in an optimizer state from ``make_optimizer``."""
    return _adamw_state(opt_state).notfinite_count
