"""Multi-host evaluation, simulated: two processes with 4 CPU devices each score the same rooms as one process
with 8 devices, each reading half of the images; every process reports the same dataset means."""

import json
import os
import socket
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(devices: int, *args: str) -> subprocess.Popen:
    env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}", "JAX_PLATFORMS": "cpu",
           "PYTHONPATH": ROOT}
    return subprocess.Popen([sys.executable, os.path.join(HERE, "multihost_eval_check.py"), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)


def _finish(proc: subprocess.Popen) -> dict:
    try:
        out, err = proc.communicate(timeout=600)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    assert proc.returncode == 0, err[-3000:]
    (row,) = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return row


def test_two_processes_evaluate_like_one():
    coordinator = f"127.0.0.1:{_free_port()}"
    procs = [_start(4, "--process-id", str(i), "--num-processes", "2", "--coordinator", coordinator,
                    "--batch-size", "4") for i in range(2)]
    single = _finish(_start(8, "--batch-size", "8"))
    multi = [_finish(p) for p in procs]
    assert [r["process"] for r in multi] == [0, 1]
    assert all(r["processes"] == 2 and r["devices"] == 8 for r in multi)
    assert single["processes"] == 1 and single["devices"] == 8
    ref = single["result"]
    assert ref["num_images"] == 11 and ref["metrics"]["abs_rel"] > 0
    for r in multi:
        res = r["result"]
        assert res["num_images"] == 11  # 6 + 5 images, the padding of both shares skipped
        for key, value in ref["metrics"].items():
            assert abs(res["metrics"][key] - value) <= 1e-6 * max(abs(value), 1.0), (key, res, ref)
