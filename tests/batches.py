"""Training batches of synthetic scenes for the training tests (data_pipelines' renderer, exact depth)."""

import numpy as np

from data_pipelines.synthetic.scenes import render_frame


def synthetic_batch(batch_size: int = 2, size=(64, 96), domain: int = 0, seed: int = 0) -> dict[str, np.ndarray]:
    frames = [render_frame(seed, i, domain, *size) for i in range(batch_size)]
    depth = np.stack([f[1] for f in frames])
    max_depth = 10.0 if domain == 0 else 80.0
    return {"image": np.stack([f[0] for f in frames]).astype(np.float32) / 255.0, "depth": depth,
            "valid": (depth > 1e-3) & (depth < max_depth), "domain": np.full(batch_size, domain, np.int32)}
