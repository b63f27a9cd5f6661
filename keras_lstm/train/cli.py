"""``keras-lstm train TASK [options]`` and ``keras-lstm train --resume RUN``.

The flags are derived from :class:`~keras_lstm.train.config.TrainConfig`; every bad argument is
reported (exit code 2) before any training starts.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from keras_lstm.train.config import add_arguments, from_args
from keras_lstm.train.errors import TrainArgumentError

__all__ = ["configure", "run"]


def configure(parser: argparse.ArgumentParser) -> None:
    add_arguments(parser)
    parser.add_argument(
        "--backend",
        choices=("tensorflow", "jax", "torch"),
        default=None,
        help="Keras's backend for this run (default: KERAS_BACKEND, else tensorflow); --distribute needs tensorflow",
    )
    parser.add_argument(
        "--resume",
        metavar="RUN",
        help="continue the run in RUN from its last completed epoch (give no other option except --verbose)",
    )


def run(args: argparse.Namespace) -> int:
    from keras_lstm.train import runner  # TensorFlow is imported only once the arguments parse

    args = argparse.Namespace(**{k: v for k, v in vars(args).items() if k != "backend"})  # applied by keras_lstm.cli
    try:
        if args.resume:
            others = sorted(k for k in vars(args) if k not in ("resume", "command", "verbose", "task"))
            if others or args.task is not None:
                raise TrainArgumentError(
                    "--resume",
                    args.resume,
                    f"given alone (the run's config.json holds the options); also given: {others or [args.task]}",
                )
            _check_run_files(args.resume)
            result = runner.resume(args.resume, verbose=getattr(args, "verbose", None))
        else:
            result = runner.train(from_args(args))
    except TrainArgumentError as err:
        print(f"keras-lstm train: error: {err}", file=sys.stderr)
        return 2
    m = result.metrics
    solved = m.get("solved_at_sequences")
    line = f"run: {result.run_dir}  sequences: {m['sequences_seen']:,}  wall: {m['wall_s']:.1f}s"
    if m.get("solve_rule"):
        line += f"  solved at: {solved:,} sequences" if solved is not None else "  not solved"
    if m.get("chance_loss") is not None:
        line += f"  final loss: {m['final'].get('loss', float('nan')):.4g} (chance {m['chance_loss']:.4g})"
    print(line)
    for text in m.get("summary", ()):  # series and classify: the test part against the baselines
        print(text)
    return 0


def _check_run_files(run_dir: str) -> None:
    """Refuse a --resume whose config.json or metrics.json is not a JSON object (before TensorFlow works)."""
    for name in ("config.json", "metrics.json"):
        path = os.path.join(run_dir, name)
        if not os.path.isfile(path):
            continue  # a missing config.json is refused by runner.resume; metrics.json comes with the first epoch
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise TrainArgumentError("--resume", run_dir, f"a run directory whose {name} is JSON ({err})") from None
        if not isinstance(data, dict) or (name == "config.json" and "task" not in data):
            what = "a JSON object" + (" naming the task" if name == "config.json" else "")
            raise TrainArgumentError("--resume", run_dir, f"a run directory whose {name} holds {what}")
