"""Shared test setup: make the helper modules in tests/ importable, and shared fixtures."""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))

import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(scope="module")
def fast_compiles():
    """For tests of logic rather than numerics: XLA compiles with most optimizations off (both sides of every
    comparison in such a module compile alike)."""
    import jax

    previous = jax.config.read("jax_disable_most_optimizations")
    jax.config.update("jax_disable_most_optimizations", True)
    yield
    jax.config.update("jax_disable_most_optimizations", previous)
