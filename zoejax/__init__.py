"""zoejax: ZoeDepth (metric monocular depth) in JAX/Flax.

``zoejax.load(path)`` returns a ready-to-run model (``forward``, ``predict``) from a converted folder or an
official / MiDaS / Hugging Face checkpoint.
"""

__version__ = "0.1.0"


def load(path, **kwargs):
    """See ``zoejax.api.load``."""
    from zoejax.api import load as _load

    return _load(path, **kwargs)
