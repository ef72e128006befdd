"""zoejax: ZoeDepth (metric monocular depth) in JAX/Flax.

``zoejax.load(path)`` returns a ready-to-run model (``forward``, ``predict``) from a converted folder, a training
work directory or an official / MiDaS / Hugging Face checkpoint. This package is the facade: it composes the
layers below it (``zoejax.api``) and none of them imports it (``tests/test_import_graph.py``).
"""

from zoejax.version import __version__

__all__ = ["__version__", "load"]


def load(path, **kwargs):
    """See ``zoejax.api.load``."""
    from zoejax.api import load as _load  # lazily: importing zoejax must not import jax

    return _load(path, **kwargs)
