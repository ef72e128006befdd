"""Numeric helpers shared by the tests (a plain module: importing from conftest is ambiguous once several
conftest.py files exist)."""

import numpy as np


def rel_l2(a, b) -> float:
    """||a - b|| / ||b|| in float64."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))
