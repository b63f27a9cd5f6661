"""Training scripts: the adding, copy, charlm and co2 tasks, and the user's own CSV (series, classify)."""

from keras_lstm.extras import require
from keras_lstm.train.config import TASKS, TrainConfig
from keras_lstm.train.errors import TrainArgumentError

__all__ = ["TASKS", "TrainArgumentError", "TrainConfig", "resume", "train"]


def train(config, run_dir=None):
    """See :func:`keras_lstm.train.runner.train`."""
    require("train", "keras_lstm.train")
    from keras_lstm.train.runner import train as _train

    return _train(config, run_dir=run_dir)


def resume(run_dir):
    """See :func:`keras_lstm.train.runner.resume`."""
    require("train", "keras_lstm.train")
    from keras_lstm.train.runner import resume as _resume

    return _resume(run_dir)
