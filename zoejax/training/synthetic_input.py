"""Built-in synthetic RGB-D input: procedural corridors with exact metric depth, and an index-addressed batch
iterator with grain-style ``get_state`` / ``set_state``. It needs no files, so the demo, the smoke tests and the
training-loop tests run with nothing downloaded (the grain pipelines in ``data_pipelines/`` are the real input).
"""

from __future__ import annotations

import numpy as np


def synthetic_scene(height: int, width: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A textured corridor seen by a pinhole camera: (image float32 (H,W,3) in [0,1], depth (H,W) metres).

    Floor, ceiling, two side walls and an end wall whose distances vary with the seed (end wall 5..9.5 m);
    checker texture in world units, so its apparent scale shrinks with distance. Depth is exact.
    """
    rng = np.random.default_rng(seed)
    floor, ceiling = rng.uniform(1.0, 1.6), rng.uniform(1.0, 1.8)
    left, right, end = rng.uniform(1.0, 2.5), rng.uniform(1.0, 2.5), rng.uniform(5.0, 9.5)
    focal = 0.8 * width
    v, u = np.mgrid[0:height, 0:width].astype(np.float64)
    x, y = (u - width / 2 + 0.5) / focal, (v - height / 2 + 0.5) / focal  # ray direction, z = 1
    with np.errstate(divide="ignore"):
        candidates = np.stack([np.where(y > 0, floor / y, np.inf), np.where(y < 0, -ceiling / y, np.inf),
                               np.where(x > 0, right / x, np.inf), np.where(x < 0, -left / x, np.inf),
                               np.full_like(x, end)])
    surface = np.argmin(candidates, axis=0)
    depth = np.min(candidates, axis=0)
    px, py, pz = x * depth, y * depth, depth
    coords = np.choose(surface, [px + pz, px + pz, py + pz, py + pz, px + py])
    checker = (np.floor(coords * 2) + np.floor(pz * 2 * (surface < 4))) % 2
    base = rng.uniform(0.25, 0.9, size=(5, 3))[surface]
    shade = (0.55 + 0.45 * checker)[..., None] * base / (1 + 0.08 * depth[..., None])
    return np.clip(shade, 0, 1).astype(np.float32), depth.astype(np.float32)


class SyntheticBatches:
    """Endless batches of corridors in the training batch format (``zoejax/training/step.py``).

    Batch ``i`` is made from scenes ``seed_offset + i * batch_size + j``: the position is just ``i``, which
    ``get_state`` / ``set_state`` save and restore (resume gives exactly the uninterrupted batches).
    """

    def __init__(self, batch_size: int, size: tuple[int, int], seed_offset: int = 0, max_depth: float = 10.0):
        self.index, self.batch_size, self.size = 0, batch_size, tuple(size)
        self.seed_offset, self.max_depth = seed_offset, max_depth

    def __iter__(self):
        return self

    def __next__(self) -> dict[str, np.ndarray]:
        first = self.seed_offset + self.index * self.batch_size
        scenes = [synthetic_scene(*self.size, seed=first + j) for j in range(self.batch_size)]
        self.index += 1
        depth = np.stack([s[1] for s in scenes])
        return {"image": np.stack([s[0] for s in scenes]), "depth": depth,
                "valid": (depth > 1e-3) & (depth < self.max_depth),
                "domain": np.zeros(self.batch_size, np.int32), "focal": np.full(self.batch_size, 0.8 * self.size[1],
                                                                                np.float32)}

    def get_state(self) -> dict:
        return {"index": self.index}

    def set_state(self, state: dict) -> None:
        self.index = int(state["index"])
