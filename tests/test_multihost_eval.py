"""Multi-host evaluation, simulated: two processes with 4 CPU devices each score the same rooms as one process
with 8 devices, each reading half of the images; every process reports the same dataset means."""

from local_processes import finish, free_port, start


def _start(devices: int, *args: str):
    return start("multihost_eval_check.py", devices, *args)


def _finish(proc) -> dict:
    (row,) = finish(proc, timeout=600)
    return row


def test_two_processes_evaluate_like_one():
    coordinator = f"127.0.0.1:{free_port()}"
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
