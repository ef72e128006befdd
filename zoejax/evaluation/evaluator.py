"""The evaluator: one jitted, sharded prediction per batch, then the official per-image metrics.

Prediction runs on every device of every host (batch split over the mesh's data x fsdp axes, parameters laid
out by the training rules); flip test-time augmentation is the original and the mirrored batch stacked into
one forward, each image routed by its own vote as separate official forwards would be. The prediction is
resized to the ground truth's size on device (bilinear, align_corners=True, as the official
``compute_metrics``). Each host scores its own images on the host; the per-image means are summed over hosts.

Batches follow ``data_pipelines/batch.py``: ``image`` (B, H, W, 3) in [0, 1] at the network size,
``depth`` (B, h, w) metres at the ground truth's size, ``valid`` (B, h, w), ``domain`` (B,).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh
from tqdm import tqdm

from zoejax.evaluation.metrics import METRICS, MetricAverager, compute_metrics
from zoejax.evaluation.protocols import EvalProtocol
from zoejax.models.depth_anything import DepthAnything
from zoejax.models.zoedepth import ZoeDepth
from zoejax.ops.resize import resize_bilinear
from zoejax.training.sharding import batch_sharding, shard_batch, traced_under


def predict_depth(model: ZoeDepth, params: Any, images: jax.Array, domain: jax.Array | None,
                  out_size: tuple[int, int], flip_tta: bool) -> jax.Array:
    """images (B, H, W, 3) in [0, 1] at the network size -> metric depth (B, *out_size) metres.

    ``domain`` routes ZoeD_NK by label; None lets each image's own router vote decide (official).
    With ``flip_tta`` the result is (f(x) + flip(f(flip(x)))) / 2, computed as one batch of 2B.
    """
    n = images.shape[0]
    if flip_tta:
        images = jnp.concatenate([images, images[:, :, ::-1]], axis=0)
        domain = None if domain is None else jnp.concatenate([domain, domain])
    depth = _METRIC_FORWARDS[type(model)](model, params, images, domain)
    if flip_tta:
        depth = 0.5 * (depth[:n] + depth[n:, :, ::-1])
    if depth.shape[1:] != tuple(out_size):
        depth = resize_bilinear(depth[..., None], out_size, align_corners=True)[..., 0]
    return depth


# module class -> its metric depth (B, H, W) metres on network-size images; ZoeD_NK routes by label or vote.
_METRIC_FORWARDS: dict[type, Callable] = {
    ZoeDepth: lambda m, p, x, d: m.apply({"params": p}, x, d, vote_per_example=True)["metric_depth"],
    DepthAnything: lambda m, p, x, d: m.apply({"params": p}, x)["metric_depth"],
}


@dataclasses.dataclass
class EvalResult:
    """Dataset means of the official metrics over ``num_images`` scored images (``num_without_depth``
    examples had no valid ground truth: KITTI rows without depth, or the padding of the last batch)."""

    dataset: str
    metrics: dict[str, float]
    num_images: int
    num_without_depth: int
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class Evaluator:
    """Evaluates parameters of one model on batches of a dataset, sharded over ``mesh``.

    Args:
      model: the Flax module (its config decides N / K / NK).
      mesh: the device mesh (``zoejax.training.sharding.make_mesh``).
      param_shardings: NamedShardings of the params tree (e.g. the train state's), or None to replicate.
      route_by_label: ZoeD_NK only: use each dataset's domain label instead of the router (official: False).
    """

    def __init__(self, model: ZoeDepth | DepthAnything, mesh: Mesh, param_shardings: Any = None,
                 route_by_label: bool = False):
        self.model = model
        self.mesh = mesh
        self.param_shardings = param_shardings
        self.check_model(model)
        self.route_by_label = route_by_label and getattr(model.config, "is_multi_head", False)
        self._compiled: dict[tuple, Callable] = {}

    def check_model(self, model) -> None:
        """TypeError unless ``model`` predicts metric depth (``_METRIC_FORWARDS``): relative models are scored by
        ``relative_evaluator.RelativeEvaluator`` (``evaluator_for`` picks)."""
        relative = isinstance(model, DepthAnything) and model.config.output_key != "metric_depth"
        if type(model) not in _METRIC_FORWARDS or relative:
            known = ", ".join(sorted(c.__name__ for c in _METRIC_FORWARDS))
            raise TypeError(f"the metric evaluator scores metric models ({known} predicting metric depth), not "
                            f"this {type(model).__name__}; relative models: relative_evaluator.evaluator_for")

    def _predict_fn(self, out_size: tuple[int, int], flip_tta: bool) -> Callable:
        key = (out_size, flip_tta)
        if key not in self._compiled:
            batch = batch_sharding(self.mesh)
            fn = lambda params, images, domain: predict_depth(  # noqa: E731
                self.model, params, images, domain if self.route_by_label else None, out_size, flip_tta)
            self._compiled[key] = jax.jit(traced_under(self.mesh, fn), out_shardings=batch,
                                          in_shardings=(self.param_shardings, batch, batch))
        return self._compiled[key]

    def predict(self, params: Any, batch: dict[str, np.ndarray], flip_tta: bool = True) -> np.ndarray:
        """This host's batch -> this host's predictions (B, h, w) metres at the ground truth's size."""
        out_size = tuple(np.shape(batch["depth"])[1:3])
        arrays = shard_batch({"image": batch["image"], "domain": batch["domain"]}, self.mesh)
        depth = self._predict_fn(out_size, flip_tta)(params, arrays["image"], arrays["domain"])
        if jax.process_count() > 1:
            depth = multihost_utils.global_array_to_host_local_array(depth, self.mesh, depth.sharding.spec)
        return np.asarray(depth)

    def evaluate(self, params: Any, batches: Iterable[dict[str, np.ndarray]], protocol: EvalProtocol, *,
                 flip_tta: bool | None = None, total: int | None = None, progress: bool = True) -> EvalResult:
        """Scores every example of ``batches`` (this host's share) under ``protocol``; every host gets the
        same dataset means. ``flip_tta`` None follows the protocol; ``total`` sizes the progress bar."""
        flip = protocol.flip_tta if flip_tta is None else flip_tta
        if self.param_shardings is not None:
            params = jax.device_put(params, self.param_shardings)
        avg = MetricAverager()
        start = time.perf_counter()
        show = progress and jax.process_index() == 0
        with tqdm(total=total, desc=f"eval {protocol.dataset}", unit="batch", disable=not show) as bar:
            for batch in batches:
                pred = self.predict(params, batch, flip)
                for gt, valid, p in zip(batch["depth"], batch["valid"], pred, strict=True):
                    avg.update(self.score(gt, p, protocol, valid))
                bar.update(1)
        total = _sum_over_hosts(avg)
        return EvalResult(protocol.dataset, total.result(), total.count, total.skipped, time.perf_counter() - start)


    def score(self, gt: np.ndarray, pred: np.ndarray, protocol: EvalProtocol, valid: np.ndarray
              ) -> dict[str, float] | None:
        """One image's metrics (None: no valid pixel): the official ones of the metric prediction."""
        return compute_metrics(gt, pred, protocol.min_depth, protocol.max_depth, protocol.crop, valid=valid,
                               silog=protocol.silog, inclusive=protocol.inclusive_range,
                               clamp=protocol.clamp_predictions, min_valid=protocol.min_valid_pixels)


def _sum_over_hosts(avg: MetricAverager) -> MetricAverager:
    """The averager of every host's images (each host holds the sums of its own share)."""
    local = np.array([avg.sums[k] for k in METRICS] + [avg.count, avg.skipped], np.float64)
    if jax.process_count() > 1:
        # Gathered as raw bytes: with x64 off, jax would round float64 sums to float32.
        gathered = np.asarray(multihost_utils.process_allgather(local.view(np.uint8)), np.uint8)
        local = gathered.reshape(-1, local.nbytes).view(np.float64).sum(axis=0)
    total = MetricAverager()
    total.sums = {k: float(local[i]) for i, k in enumerate(METRICS)}
    total.count, total.skipped = int(local[-2]), int(local[-1])
    return total
