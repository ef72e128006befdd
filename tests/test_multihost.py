"""Multi-host training, simulated on this machine: two processes with 4 CPU devices each join one JAX runtime
(localhost coordinator, gloo collectives) and train the tiny ZoeD_N with the real loop on one 8-device mesh,
each feeding its slice of the global batch; they save an orbax checkpoint together and a second phase restores
it and continues. Losses match a single process with 8 devices fed the whole batch."""

import json

import pytest
from local_processes import finish, free_port, start


def _start(workdir, devices, *args):
    return start("multihost_check.py", devices, "--workdir", workdir, *args)


_finish = finish


def _losses(workdir):
    lines = [json.loads(x) for x in (workdir / "metrics.jsonl").read_text().splitlines()]
    return {x["step"]: x["loss"] for x in lines if "loss" in x}


@pytest.mark.slow  # several processes, each compiling the train step (run by make test)
def test_two_processes_train_like_one(tmp_path):
    coordinator = f"127.0.0.1:{free_port()}"
    multi, single = tmp_path / "multi", tmp_path / "single"
    procs = [_start(multi, 4, "--process-id", str(i), "--num-processes", "2", "--coordinator", coordinator,
                    "--steps", "2,3") for i in range(2)]
    reference = _start(single, 8, "--steps", "3")
    rows = [_finish(p) for p in procs]
    ref_rows = _finish(reference)

    for i, phases in enumerate(rows):
        assert [p["process"] for p in phases] == [i, i]
        assert all(p["processes"] == 2 and p["devices"] == 8 and p["local_devices"] == 4 for p in phases)
        first, second = (p["result"] for p in phases)
        assert first["step"] == 2 and first["resumed_from"] is None
        assert second["step"] == 3 and second["resumed_from"] == 2  # restored the checkpoint saved together
        # Every process computes the same global loss.
        assert second["loss"] == rows[0][1]["result"]["loss"]
    assert ref_rows[0]["processes"] == 1 and ref_rows[0]["devices"] == 8
    assert sorted(int(p.name) for p in (multi / "checkpoints").iterdir() if p.name.isdigit()) == [2, 3]

    multi_losses, single_losses = _losses(multi), _losses(single)
    assert sorted(multi_losses) == sorted(single_losses) == [1, 2, 3]
    for step in range(1, 4):
        # Same examples in each global batch (ordered per host slice), so the pooled loss agrees to rounding;
        # step 3 comes after the restore, so the checkpoint and the data position were restored correctly.
        assert abs(multi_losses[step] - single_losses[step]) <= 2e-5 * single_losses[step], (step, multi_losses,
                                                                                            single_losses)
    assert len(set(single_losses.values())) == 3  # the steps really differ (training moves)
