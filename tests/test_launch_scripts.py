"""launch_tpu.sh and launch_gpu.sh: --dry-run prints exactly the commands they would run (nothing runs: no
gcloud or srun is needed), --help works, bad flag combinations are refused; the printed lines are valid shell
whose words are what the scripts would execute."""

import os
import shlex
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(script, *args, tmpdir="/tmp/launch-test"):
    env = {**os.environ, "TMPDIR": tmpdir, "PATH": "/usr/bin:/bin"}  # no gcloud/srun on PATH: nothing may run
    return subprocess.run(["bash", os.path.join(ROOT, script), *args], capture_output=True, text=True, env=env,
                          timeout=60)


def test_tpu_dry_run_prints_every_command():
    r = run("launch_tpu.sh", "--dry-run", "--name", "zoe-pod", "--zone", "us-central2-b", "--accelerator-type",
            "v4-32", "--project", "my-proj", "--config", "configs/zoedepth_nk.py", "--workdir", "gs://bkt/runs/nk",
            "--config.optim.lr=1e-4", "--config.mesh_shape=(-1, 4, 1)")
    assert r.returncode == 0, r.stderr
    where = "--zone=us-central2-b --project=my-proj"
    ssh = f"gcloud compute tpus tpu-vm ssh zoe-pod {where} --worker=all"
    install = ("rm -rf ~/zoejax && mkdir -p ~/zoejax && tar xzf ~/zoejax-src.tar.gz -C ~/zoejax && cd ~/zoejax"
               " && python3 -m venv .venv && .venv/bin/pip install -q -r requirements.txt \"jax[tpu]==0.10.2\""
               " && .venv/bin/pip install -q --no-deps -e .")
    assert r.stdout.splitlines() == [
        f"gcloud compute tpus tpu-vm describe zoe-pod {where} >/dev/null 2>&1 || gcloud compute tpus tpu-vm "
        f"create zoe-pod {where} --accelerator-type=v4-32 --version=tpu-ubuntu2204-base",
        f"git -C {ROOT} archive --format=tar.gz -o /tmp/launch-test/zoejax-src-zoe-pod.tar.gz HEAD",
        f"gcloud compute tpus tpu-vm scp /tmp/launch-test/zoejax-src-zoe-pod.tar.gz zoe-pod:zoejax-src.tar.gz "
        f"{where} --worker=all",
        f"{ssh} '--command={install}'",
        f"{ssh} '--command=cd ~/zoejax && ZOEJAX_DISTRIBUTED=1 .venv/bin/python -m zoejax.cli.train "
        "--config=configs/zoedepth_nk.py --workdir=gs://bkt/runs/nk --config.optim.lr=1e-4 "
        "'\\''--config.mesh_shape=(-1, 4, 1)'\\'''",
    ]
    # The last line is one valid shell command whose --command is the training command with its override
    # quoted once more for the remote shell.
    words = shlex.split(r.stdout.splitlines()[-1])
    remote = shlex.split(words[-1].removeprefix("--command="))
    assert remote[-1] == "--config.mesh_shape=(-1, 4, 1)" and "ZOEJAX_DISTRIBUTED=1" in remote


def test_tpu_create_modes_and_skip_install():
    base = ["--dry-run", "--name", "v", "--zone", "z", "--config", "c.py", "--workdir", "w"]
    created = run("launch_tpu.sh", *base, "--create", "--skip-install").stdout.splitlines()
    assert created == [
        "gcloud compute tpus tpu-vm create v --zone=z --accelerator-type=v4-8 --version=tpu-ubuntu2204-base",
        "gcloud compute tpus tpu-vm ssh v --zone=z --worker=all '--command=cd ~/zoejax && ZOEJAX_DISTRIBUTED=1 "
        ".venv/bin/python -m zoejax.cli.train --config=c.py --workdir=w'"]
    reused = run("launch_tpu.sh", *base, "--no-create", "--skip-install", "--version", "v2-alpha-tpuv5").stdout
    assert len(reused.splitlines()) == 1 and "create" not in reused


@pytest.mark.parametrize("args, message", [
    (["--zone", "z", "--config", "c", "--workdir", "w"], "--name is required"),
    (["--name", "n", "--zone", "z", "--config", "c", "--workdir", "w", "--bogus"], "unknown argument: --bogus"),
])
def test_tpu_rejects_bad_flags(args, message):
    r = run("launch_tpu.sh", "--dry-run", *args)
    assert r.returncode == 2 and message in r.stderr and r.stdout == ""


def test_gpu_dry_run_modes():
    common = ["--dry-run", "--config", "configs/zoedepth_n.py", "--workdir", "/shared/runs/n"]
    train = ".venv/bin/python -m zoejax.cli.train --config=configs/zoedepth_n.py --workdir=/shared/runs/n"
    one = run("launch_gpu.sh", *common, "--config.global_batch_size=32")
    assert one.stdout == f"{train} --config.global_batch_size=32\n"
    slurm = run("launch_gpu.sh", *common, "--slurm", "--nodes", "4", "--gpus-per-node", "4")
    assert slurm.stdout == (f"srun --nodes=4 --ntasks-per-node=1 --gpus-per-node=4 env ZOEJAX_DISTRIBUTED=1 "
                            f"{train}\n")
    explicit = run("launch_gpu.sh", *common, "--coordinator", "10.0.0.1:8476", "--num-processes", "2",
                   "--process-id", "1", "--python", "/opt/venv/bin/python", "--config.mesh_shape=(-1, 8, 1)")
    assert explicit.stdout == (
        "env ZOEJAX_DISTRIBUTED=1 ZOEJAX_COORDINATOR=10.0.0.1:8476 ZOEJAX_NUM_PROCESSES=2 ZOEJAX_PROCESS_ID=1 "
        "/opt/venv/bin/python -m zoejax.cli.train --config=configs/zoedepth_n.py --workdir=/shared/runs/n "
        "'--config.mesh_shape=(-1, 8, 1)'\n")
    assert shlex.split(explicit.stdout)[-1] == "--config.mesh_shape=(-1, 8, 1)"


@pytest.mark.parametrize("args, message", [
    (["--coordinator", "h:1"], "--coordinator needs --num-processes and --process-id"),
    (["--coordinator", "h:1", "--num-processes", "2", "--process-id", "2"], "0 <= --process-id"),
    (["--coordinator", "nohost", "--num-processes", "2", "--process-id", "0"], "ADDR:PORT"),
    (["--slurm"], "--slurm needs --nodes"),
])
def test_gpu_rejects_bad_flags(args, message):
    r = run("launch_gpu.sh", "--dry-run", "--config", "c", "--workdir", "w", *args)
    assert r.returncode == 2 and message in r.stderr and r.stdout == ""


def test_help_and_train_cli_env_contract(monkeypatch):
    for script in ("launch_tpu.sh", "launch_gpu.sh"):
        r = run(script, "--help")
        assert r.returncode == 0 and r.stdout.startswith("Usage:") and "--dry-run" in r.stdout
    # What launch_gpu.sh's explicit mode sets is exactly what zoejax-train and zoejax-eval read.
    import jax

    from zoejax.cli import distributed

    calls = []
    monkeypatch.setattr(jax.distributed, "initialize", lambda **kw: calls.append(kw))
    env = {"ZOEJAX_DISTRIBUTED": "1", "ZOEJAX_COORDINATOR": "10.0.0.1:8476", "ZOEJAX_NUM_PROCESSES": "2",
           "ZOEJAX_PROCESS_ID": "1"}
    assert distributed.initialize_distributed(env)
    assert calls == [{"coordinator_address": "10.0.0.1:8476", "num_processes": 2, "process_id": 1}]
    assert distributed.initialize_distributed({"ZOEJAX_DISTRIBUTED": "1"}) and calls[-1] == {}  # TPU / SLURM auto
    assert not distributed.initialize_distributed({}) and len(calls) == 2
    with pytest.raises(ValueError, match="set but not ZOEJAX_PROCESS_ID:"):
        distributed.initialize_distributed({**env, "ZOEJAX_PROCESS_ID": ""})
    # zoejax-eval sets up with the same variables (it once called initialize() without them).
    from zoejax.cli import evaluate

    class Started(Exception):
        pass

    def start(**kw):
        calls.append(kw)
        raise Started

    monkeypatch.setattr(jax.distributed, "initialize", start)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(Started):
        evaluate.main(["--checkpoint", "runs/none", "--datasets", "synthetic_indoor"])
    assert calls[-1] == {"coordinator_address": "10.0.0.1:8476", "num_processes": 2, "process_id": 1}
