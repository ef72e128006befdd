"""One evaluation path: what a training run logs as its periodic evaluation at step S is what ``zoejax-eval``
reports for step S's checkpoint, held-out synthetic scenes and an outdoor custom dataset alike."""

import importlib.util
import json
import os

import numpy as np
from PIL import Image

from data_pipelines.pipeline import build_eval
from zoejax.cli import evaluate as evaluate_cli
from zoejax.cli.train import build_run
from zoejax.evaluation.run import EvalDataSettings, eval_sets
from zoejax.training.loop import train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIZE = (64, 96)


def _demo_config(backbone: str):
    spec = importlib.util.spec_from_file_location("demo_config", os.path.join(ROOT, "configs", "demo.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config(backbone)


def _outdoor_list(folder) -> str:
    """Three 48x80 outdoor frames with depth up to 60 m (beyond the indoor 10 m), listed in a CSV."""
    rng = np.random.default_rng(7)
    os.makedirs(folder)
    rows = ["image,depth,depth_scale"]
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (48, 80, 3), dtype=np.uint8)).save(folder / f"rgb{i}.png")
        np.save(folder / f"depth{i}.npy", rng.uniform(1.0, 60.0, (48, 80)).astype(np.float32))
        rows.append(f"rgb{i}.png,depth{i}.npy,1.0")
    (folder / "val.csv").write_text("\n".join(rows) + "\n")
    return str(folder / "val.csv")


def test_logged_evaluation_equals_zoejax_eval_of_the_checkpoint(tmp_path, fast_compiles, capsys):
    val = _outdoor_list(tmp_path / "custom")
    config = _demo_config("tiny")
    with config.unlocked():
        config.input_size = SIZE
        config.data.sources = tuple({**s, "size": SIZE} for s in config.data.to_dict()["sources"])
        config.num_train_steps = config.checkpoint_every_steps = 2
        config.eval_every_steps = config.log_every_steps = 1
        config.global_batch_size = 2
        config.optim.lr = 1e-2  # steps far enough apart that the comparison below tells them apart
        config.async_checkpoints = False
        config.tensorboard = False
        config.eval.datasets = "synthetic_indoor,custom"
        config.eval.list_file = val
        config.eval.custom_domain = 1
        config.eval.num_examples = 3
        config.eval.batch_size = 2
    workdir = tmp_path / "run"
    model, run, optim, loss, batches, evaluate = build_run(config, 0, 1)
    train(model, run, optim, loss, str(workdir), batches, evaluate)
    logged = {}
    for line in (workdir / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        if any(k.startswith("eval/") for k in record):
            logged[record["step"]] = record

    output = tmp_path / "eval.json"
    code = evaluate_cli.main(["--checkpoint", str(workdir), "--datasets", "synthetic_indoor,custom",
                              "--list", f"custom={val}", "--custom-domain", "1", "--synthetic-examples", "3",
                              "--batch-size", "2", "--output", str(output), "--no-progress"])
    assert code == 0, capsys.readouterr().err
    results = {r["dataset"]: r for r in json.loads(output.read_text())["results"]}
    assert results["synthetic_indoor"]["num_images"] == 3 and results["custom"]["num_images"] == 3

    def difference(step: int) -> float:
        return max(abs(logged[step][f"eval/{name}/{key}"] - value)
                   for name, r in results.items() for key, value in r["metrics"].items())

    assert sorted(logged) == [1, 2]
    print(f"\nlargest |logged eval - zoejax-eval of checkpoint 2| over 2 datasets x 9 metrics: step 2 "
          f"{difference(2):.3g}, step 1 {difference(1):.3g}")
    assert difference(2) <= 1e-6
    assert difference(1) > 1e-5  # step 1's logged evaluation is not step 2's: the comparison tells them apart


def test_custom_dataset_is_scored_in_its_domain(tmp_path):
    val = _outdoor_list(tmp_path / "custom")
    for domain, max_depth in ((0, 10.0), (1, 80.0)):
        settings = EvalDataSettings(overrides={"custom": {"list_file": val}}, batch_size=3, image_size=SIZE,
                                    custom_domain=domain)
        (item,) = eval_sets(["custom"], settings)
        assert (item.protocol.domain, item.protocol.max_depth, item.data.sources[0].domain) == (
            domain, max_depth, domain)
        batch = next(iter(build_eval(item.data, 0, 1)))
        far = batch["valid"] & (batch["depth"] > 10.0)
        assert far.any() == (domain == 1)  # ground truth beyond 10 m is scored outdoor only
