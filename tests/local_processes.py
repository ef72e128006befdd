"""Starting the check scripts of the multi-process tests: local "hosts" with simulated CPU devices."""

import json
import os
import socket
import subprocess
import sys

from fast_compile import ROOT, fast_compile_env

HERE = os.path.dirname(os.path.abspath(__file__))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(script: str, devices: int, *args: str) -> subprocess.Popen:
    """``tests/<script>`` in a fresh interpreter with ``devices`` CPU devices. No persistent compilation cache:
    with it, a restored phase of a two-process run hung in its first step (jax 0.10.2, CPU, gloo)."""
    env = fast_compile_env(devices)
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    return subprocess.Popen([sys.executable, os.path.join(HERE, script), *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)


def finish(proc: subprocess.Popen, timeout: float = 900) -> list[dict]:
    """Waits for ``proc``; asserts it succeeded; returns the JSON lines it printed."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    assert proc.returncode == 0, err[-3000:]
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]
