"""Run by test_resume_kill.py: train the tiny ZoeD_N with the real loop on the grain pipeline (shuffled synthetic
rooms, so the data position matters) to --steps, logging every step.

With --kill-after K the process SIGKILLs itself (no cleanup, no SIGTERM handler, as a lost VM) when the loop
asks for the batch of step K + 1, once the asynchronously written step-K checkpoint is committed (orbax renames
the finished step directory to its final name, ``checkpoints/K``).
"""

import argparse
import os
import signal
import time

import jax


class KillAfter:
    """Wraps the grain iterator (keeping get_state/set_state) and kills the process at batch K + 1."""

    def __init__(self, it, kill_after: int, checkpoint_dir: str):
        self.it, self.kill_after, self.checkpoint_dir, self.served = it, kill_after, checkpoint_dir, 0

    def __iter__(self):
        return self

    def __next__(self):
        if self.served == self.kill_after:
            committed = os.path.join(self.checkpoint_dir, str(self.kill_after))
            deadline = time.time() + 120
            while not os.path.isdir(committed) and time.time() < deadline:
                time.sleep(0.05)
            os.kill(os.getpid(), signal.SIGKILL)
        self.served += 1
        return next(self.it)

    def get_state(self):
        return self.it.get_state()

    def set_state(self, state):
        self.served = -(10**9)  # a resumed run is never killed
        self.it.set_state(state)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--steps", type=int, required=True)
    parser.add_argument("--kill-after", type=int, default=0)
    parser.add_argument("--checkpoint-every", type=int, default=3)
    args = parser.parse_args()
    jax.config.update("jax_disable_most_optimizations", True)

    from data_pipelines.config import DataConfig
    from data_pipelines.pipeline import build_train
    from zoejax.models import presets
    from zoejax.training.loop import TrainConfig, train
    from zoejax.training.optim import OptimConfig
    from zoejax.training.step import LossConfig

    data = DataConfig.synthetic(64, size=(64, 96), image_size=(64, 96), batch_size=2)
    batches = iter(build_train(data, seed=7, process_index=0, process_count=1))
    if args.kill_after:
        batches = KillAfter(batches, args.kill_after, os.path.join(args.workdir, "checkpoints"))
    run = TrainConfig(num_train_steps=args.steps, global_batch_size=2, log_every_steps=1,
                      checkpoint_every_steps=args.checkpoint_every, mesh_shape=(1, 1, 1), async_checkpoints=True,
                      tensorboard=False)
    train(presets.zoed_n("tiny"), run, OptimConfig(total_steps=6, lr=1e-3), LossConfig(), args.workdir, batches)


if __name__ == "__main__":
    main()
