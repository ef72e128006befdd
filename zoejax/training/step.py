"""The pure, jit-able training step.

``train_step(state, batch, rng)`` is built by ``make_train_step`` from the model, the optimizer and the loss
weights (a closure over static things only); the caller jits it with donation and shardings. Evaluation is
``zoejax.evaluation`` (the official metrics), not a loss. RNG per step = fold_in(rng, step), so a resumed run
is bit-identical to an uninterrupted one.

Batch (see ``data_pipelines/batch.py``): ``image`` (B, H, W, 3) float [0, 1] at the network size, ``depth``
(B, h, w) metres at the dataset's size, ``valid`` (B, h, w) bool, ``domain`` (B,) int32.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax

from zoejax.models.zoedepth import ZoeDepth
from zoejax.training.losses import domain_loss, gradient_matching_loss, silog_loss
from zoejax.training.optim import nonfinite_count
from zoejax.training.state import TrainState


@dataclasses.dataclass(frozen=True)
class LossConfig:
    """Loss weights (official: w_si 1, w_grad 0; NK: w_domain 100) and NK routing during training.

    ``route_by_label=False`` is the official behaviour: the depth loss goes through the head the router
    votes for; True routes each example to its labelled head (the paper's "labeled router").
    """

    w_si: float = 1.0
    w_grad: float = 0.0
    w_domain: float = 100.0
    route_by_label: bool = False


def make_train_step(model: ZoeDepth, tx: optax.GradientTransformation, loss_cfg: LossConfig) -> Callable:
    """``train_step(state, batch, rng) -> (state, metrics)``: one AdamW update on the loss of ``loss_cfg``."""
    multi_head = model.config.is_multi_head

    def losses(params, batch, rng, train: bool):
        domain = batch["domain"] if (multi_head and loss_cfg.route_by_label) else None
        out = model.apply({"params": params}, batch["image"], domain, train=train, rngs={"dropout": rng})
        si, n_valid = silog_loss(out["metric_depth"], batch["depth"], batch["valid"])
        total = loss_cfg.w_si * si
        metrics = {"silog": si, "valid_pixels": n_valid}
        if loss_cfg.w_grad:
            grad_term = gradient_matching_loss(out["metric_depth"], batch["depth"], batch["valid"])
            total = total + loss_cfg.w_grad * grad_term
            metrics["grad_loss"] = grad_term
        if multi_head:
            ce = domain_loss(out["domain_logits"], batch["domain"])
            total = total + loss_cfg.w_domain * ce
            metrics["domain_loss"] = ce
            metrics["domain_accuracy"] = jnp.mean(out["domain"] == batch["domain"])
        metrics["loss"] = total
        return total, (metrics, out)

    def train_step(state: TrainState, batch: dict, rng: jax.Array) -> tuple[TrainState, dict]:
        step_rng = jax.random.fold_in(rng, state.step)
        grads, (metrics, _) = jax.grad(losses, has_aux=True)(state.params, batch, step_rng, True)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        metrics = {**metrics, "grad_norm": optax.tree.norm(grads), "skipped_steps": nonfinite_count(opt_state),
                   "finite": jnp.isfinite(metrics["loss"])}
        return TrainState(state.step + 1, params, opt_state), metrics

    return train_step
