"""zoejax/host_memory.py: with ZOEJAX_KEEP_HOST_MEMORY=1 on a CPU-only Linux host, freed buffers are reused
instead of faulted in again; without it nothing changes."""

import json
import os
import subprocess
import sys

from fast_compile import ROOT

from zoejax import host_memory

HERE = os.path.dirname(os.path.abspath(__file__))


def _run(**env: str) -> dict:
    clean = {k: v for k, v in os.environ.items() if k not in ("ZOEJAX_KEEP_HOST_MEMORY", "JAX_PLATFORMS")}
    out = subprocess.run([sys.executable, os.path.join(HERE, "host_memory_check.py")], capture_output=True,
                         text=True, check=True, env={**clean, "PYTHONPATH": ROOT, **env}, timeout=300)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_freed_memory_is_reused_without_page_faults():
    kept, default = _run(JAX_PLATFORMS="cpu", ZOEJAX_KEEP_HOST_MEMORY="1"), _run(JAX_PLATFORMS="cpu")
    assert kept["applied"] and not default["applied"]
    # Every round of glibc's default faults its 256 MB in again (numpy asks for transparent huge pages, so a fault
    # may bring 2 MB: >= 128 faults a round); with the setting only the first round does.
    first = default["faults"][0]
    assert first >= 128 and all(f > 0.9 * first for f in default["faults"]), default
    assert kept["faults"][0] > 0.9 * first and max(kept["faults"][1:]) < 0.01 * first, kept


def test_only_on_cpu_only_hosts(monkeypatch):
    monkeypatch.setenv("JAX_PLATFORMS", "cuda")
    assert not host_memory.cpu_only()
    monkeypatch.setenv("JAX_PLATFORMS", "cpu")
    assert host_memory.cpu_only()
    monkeypatch.setenv("JAX_PLATFORMS", "cpu,tpu")
    assert not host_memory.cpu_only()
    assert not _run(JAX_PLATFORMS="cuda", ZOEJAX_KEEP_HOST_MEMORY="1")["applied"]
