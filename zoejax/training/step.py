"""The pure, jit-able training step, the same for every model family.

``train_step(state, batch, rng)`` is built by ``make_train_step`` from the model, the optimizer and the loss
config (a closure over static things only); the caller jits it with donation and shardings. How the model is run
on a batch and scored is the objective's (``zoejax.training.objectives``: one table, chosen by
``LossConfig.objective`` or the model's default). Evaluation is ``zoejax.evaluation`` (the official metrics), not a
loss. RNG per step = fold_in(rng, step), so a resumed run is bit-identical to an uninterrupted one.

Batch (see ``data_pipelines/batch.py``): ``image`` (B, H, W, 3) float [0, 1] at the network size, ``depth``
(B, h, w) metres at the dataset's size, ``valid`` (B, h, w) bool, ``domain`` (B,) int32.
"""

from __future__ import annotations

from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from zoejax.training.objectives import LossConfig, objective_for
from zoejax.training.optim import nonfinite_count
from zoejax.training.state import TrainState

__all__ = ["LossConfig", "make_train_step"]


def make_train_step(model: nn.Module, tx: optax.GradientTransformation, loss_cfg: LossConfig) -> Callable:
    """``train_step(state, batch, rng) -> (state, metrics)``: one optimizer update on the objective of
    ``loss_cfg`` for ``model`` (a ZoeDepth or DepthAnything module; ValueError when the objective does not train
    its family)."""
    objective = objective_for(model.config, loss_cfg)
    loss_of = objective.make_loss(model.config, loss_cfg)

    def losses(params, batch, rng, train: bool):
        out = objective.forward(model, params, batch, rng, train, loss_cfg)
        total, metrics = loss_of(out, batch)
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
