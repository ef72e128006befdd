"""zoejax: ZoeDepth (metric monocular depth) in JAX/Flax."""

__version__ = "0.1.0"
