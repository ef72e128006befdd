"""Shared test setup: make the helper modules in tests/ importable, and shared fixtures."""

import atexit
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))

# One XLA compilation cache for the whole run, shared by both xdist workers (they inherit this environment from
# the controller, which loads this file first) and the CLI subprocesses the tests start: many tests compile the
# same tiny-model programs. Entries are keyed by the program, the compile options and the jax/XLA versions, so a
# hit never changes a result. The multi-process checks run without it (tests/local_processes.py).
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    _cache_dir = tempfile.mkdtemp(prefix="zoejax-tests-xla-")
    os.environ["JAX_COMPILATION_CACHE_DIR"] = _cache_dir
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")
    atexit.register(shutil.rmtree, _cache_dir, True)

# Every compile in the run (this process, its xdist workers and the subprocesses they start) generates code as one
# LLVM module instead of XLA:CPU's default split for parallel codegen: the two workers already use both cores, and
# the split's per-module overhead cost ~10% of the CPU time of the training tests (the kernels are built from the
# same IR, so results do not change; tests/fast_compile.py sets it for the logic-only subprocesses too).
_ONE_MODULE = "--xla_cpu_parallel_codegen_split_count=1"
if "parallel_codegen_split_count" not in os.environ.get("XLA_FLAGS", ""):  # unless the caller chose a split
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {_ONE_MODULE}".strip()

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from zoejax import host_memory  # noqa: E402

# With ZOEJAX_KEEP_HOST_MEMORY=1 in the environment the CLIs would keep freed host memory in their process
# (zoejax/host_memory.py); tests call some of them in this process, whose two xdist workers hold full-size models
# in turn and would then keep each test's peak resident for the rest of the run.
host_memory._applied.append(False)

# The longest files (multi-process training, sharded layouts, train CLI) start first, so that under
# ``pytest -n 2 --dist loadfile`` (make test) neither worker is left alone with one of them at the end.
LONGEST_FIRST = ("test_multihost.py", "test_sharded_training.py", "test_two_stage.py", "test_train_loop.py",
                 "test_resume_kill.py",
                 "test_parity_full.py", "test_training_extras.py")


def pytest_collection_modifyitems(config, items):
    def rank(item):
        name = item.path.name
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)
    items.sort(key=rank)  # stable: each file's tests keep their order and stay together


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(scope="module")
def fast_compiles():
    """For modules testing logic rather than numerics: XLA compiles with most optimizations off."""
    from fast_compile import fast_compiles

    with fast_compiles():
        yield
