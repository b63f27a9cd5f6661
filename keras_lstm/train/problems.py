"""What each task learns: batches, model head, loss, metrics, chance level and solved criterion.

Every training batch is a pure function of ``(seed, batch index)``, so a resumed run sees exactly the
batches the uninterrupted run would have seen.

Every model takes sequences of any length (its input's time dimension is None): trained at ``-T``, it
answers shorter and longer sequences, in process and once exported (the serving signatures' time
dimension is unknown too).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import keras
import numpy as np
from keras import ops

from keras_lstm.train import tasks
from keras_lstm.train.config import TrainConfig
from keras_lstm.train.errors import TrainArgumentError, required
from keras_lstm.train.models import recurrent_layer

__all__ = ["VOCAB_FILE", "SolveRule", "Task", "make_task"]

TRAIN, VALIDATION = 0, 1
VOCAB_FILE = "vocab.json"


@dataclass(frozen=True)
class SolveRule:
    """Solved when, over the last ``window`` training sequences, every metric meets its bound.

    ``bounds`` maps a metric name to ``("<", x)`` or ``(">=", x)``.
    """

    bounds: dict
    description: str
    window: int = 2000


class Task:
    name: str
    chance_loss: float | None = None
    chance_name: str = "chance"
    solve_rule: SolveRule | None = None
    time_varies: bool = False  # batches differ in length (padded per batch)

    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg

    def rng(self, stream: int, index: int) -> np.random.Generator:
        return np.random.default_rng([required(self.cfg.seed, "--seed"), stream, index])

    @property
    def steps_per_epoch(self) -> int:
        return required(self.cfg.steps_per_epoch, "--steps-per-epoch")

    @property
    def length(self) -> int:
        """T, for the tasks that have one (TrainConfig.resolved() gives it the task's default)."""
        return required(self.cfg.length, "--length")

    @property
    def validation_size(self) -> int:
        return required(self.cfg.validation_size, "--validation-size")

    def train_batch(self, index: int):
        raise NotImplementedError

    def validation_data(self):
        raise NotImplementedError

    def build_model(self) -> keras.Model:
        raise NotImplementedError

    def loss_and_metrics(self):
        raise NotImplementedError

    def save_assets(self, out_dir: str) -> None:
        """Files a run needs besides the model (charlm's vocabulary)."""

    def finish(self, model: keras.Model, out_dir: str) -> dict:
        """Task-specific results after training (co2's forecast), merged into metrics.json."""
        return {}


# Adding ----------------------------------------------------------------------------------------------
@keras.saving.register_keras_serializable(package="keras_lstm")
def _miss(y_true, y_pred):
    """1 where a sequence's absolute error is at least 0.04 (not 'processed correctly', in the paper's words)."""
    return ops.cast(ops.abs(y_true - y_pred) >= 0.04, "float32")[..., 0]


class Adding(Task):
    name = "adding"
    chance_loss = tasks.ADDING_CHANCE_MSE
    chance_name = "always 0.5 (MSE 1/24)"
    solve_rule = SolveRule(
        {"mae": ("<", 0.01), "miss": ("<", 0.5 / 2000)},
        "mean absolute training error < 0.01 and all of the last 2,000 sequences within 0.04 (H&S 1997)",
    )

    def train_batch(self, index):
        x, _, y = tasks.adding_batch(self.rng(TRAIN, index), self.cfg.batch_size, self.length)
        return x, y

    def validation_data(self):
        x, _, y = tasks.adding_batch(self.rng(VALIDATION, 0), self.validation_size, self.length)
        return x, y

    def build_model(self):
        inputs = keras.Input((None, 2), name="pairs")  # trained on T + T/10 steps; any length runs
        h = keras.layers.Masking(tasks.PAD, name="mask")(inputs)
        h = recurrent_layer(self.cfg, return_sequences=False)(h)
        return keras.Model(inputs, keras.layers.Dense(1, dtype="float32", name="sum")(h), name="adding")

    def loss_and_metrics(self):
        return "mse", [keras.metrics.MeanAbsoluteError(name="mae"), keras.metrics.MeanMetricWrapper(_miss, name="miss")]


# Copy ------------------------------------------------------------------------------------------------
@keras.saving.register_keras_serializable(package="keras_lstm")
def _recall_accuracy(y_true, logits):
    """Per sequence: the fraction of the 10 recalled symbols predicted right."""
    recall = tasks.COPY_RECALL
    predicted = ops.argmax(logits[:, -recall:, :], axis=-1)
    return ops.mean(ops.cast(ops.equal(predicted, ops.cast(y_true[:, -recall:], predicted.dtype)), "float32"), axis=-1)


class Copy(Task):
    name = "copy"
    chance_name = "memoryless 10·ln8/(T+20)"
    solve_rule = SolveRule(
        {"recall_accuracy": (">=", 0.99)}, "99% of the recalled symbols right over the last 2,000 sequences"
    )

    def __init__(self, cfg):
        super().__init__(cfg)
        self.chance_loss = tasks.copy_baseline_loss(self.length)

    def train_batch(self, index):
        return tasks.copy_batch(self.rng(TRAIN, index), self.cfg.batch_size, self.length)

    def validation_data(self):
        return tasks.copy_batch(self.rng(VALIDATION, 0), self.validation_size, self.length)

    def build_model(self):
        inputs = keras.Input((None, tasks.COPY_CLASSES), name="symbols")  # trained on T + 20 steps
        h = recurrent_layer(self.cfg, return_sequences=True)(inputs)
        logits = keras.layers.Dense(tasks.COPY_CLASSES, dtype="float32", name="logits")(h)
        return keras.Model(inputs, logits, name="copy")

    def loss_and_metrics(self):
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        return loss, [keras.metrics.MeanMetricWrapper(_recall_accuracy, name="recall_accuracy")]


# Charlm ----------------------------------------------------------------------------------------------
class CharLM(Task):
    name = "charlm"
    chance_name = "unigram entropy"
    EMBEDDING = 32

    def __init__(self, cfg):
        super().__init__(cfg)
        text = tasks.load_text(cfg.text, cfg.max_chars)
        T = self.length
        if len(text) < 20 * (T + 1):
            raise TrainArgumentError(
                "--text", cfg.text, f"a text of at least {20 * (T + 1)} characters for T={T}; it has {len(text)}"
            )
        self.vocab = sorted(set(text))
        index = {ch: i for i, ch in enumerate(self.vocab)}
        ids = np.fromiter((index[ch] for ch in text), dtype=np.int32, count=len(text))
        split = int(len(ids) * 0.9)
        self.train_ids, self.val_ids = ids[:split], ids[split:]
        counts = np.bincount(self.train_ids, minlength=len(self.vocab)) / len(self.train_ids)
        counts = counts[counts > 0]
        self.chance_loss = float(-(counts * np.log(counts)).sum())
        self.num_chars = len(text)

    def _windows(self, ids, starts):
        T = self.length
        idx = starts[:, None] + np.arange(T + 1)[None, :]
        w = ids[idx]
        return w[:, :-1], w[:, 1:]

    def train_batch(self, index):
        starts = self.rng(TRAIN, index).integers(0, len(self.train_ids) - self.length - 1, self.cfg.batch_size)
        return self._windows(self.train_ids, starts)

    def validation_data(self):
        n = len(self.val_ids) - self.length - 1
        starts = np.linspace(0, max(n - 1, 0), self.validation_size).astype(np.int64)
        return self._windows(self.val_ids, starts)

    def build_model(self):
        inputs = keras.Input((None,), dtype="int32", name="chars")
        h = keras.layers.Embedding(len(self.vocab), self.EMBEDDING, name="embedding")(inputs)
        h = recurrent_layer(self.cfg, return_sequences=True)(h)
        logits = keras.layers.Dense(len(self.vocab), dtype="float32", name="logits")(h)
        return keras.Model(inputs, logits, name="charlm")

    def loss_and_metrics(self):
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        return loss, [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]

    def save_assets(self, out_dir):
        with open(os.path.join(out_dir, VOCAB_FILE), "w", encoding="utf-8") as f:
            json.dump(self.vocab, f)

    def finish(self, model, out_dir):
        from keras_lstm.train.sample import generate

        text = generate(model, self.vocab, prime="def ", length=60, temperature=0.8, seed=self.cfg.seed)
        return {"characters": self.num_chars, "vocabulary": len(self.vocab), "sample_preview": text}


# CO2 -------------------------------------------------------------------------------------------------
class CO2(Task):
    """Forecast Mauna Loa CO2 from its monthly changes.

    The model reads the last T monthly differences (standardised) and predicts the next one; the
    forecast feeds its own predictions back for the last :attr:`TEST_MONTHS` months, which training
    never sees, and integrates them into ppm. The two years before those validate (early stopping).
    """

    name = "co2"
    chance_loss = 1.0
    chance_name = "predict the mean change (MSE 1)"
    TEST_MONTHS = 120
    VALIDATION_MONTHS = 24

    def __init__(self, cfg):
        super().__init__(cfg)
        self.months, self.ppm = tasks.co2_monthly()
        n_train = len(self.ppm) - self.TEST_MONTHS
        T = self.length
        diffs = np.diff(self.ppm[:n_train])  # diffs[k] = ppm[k+1] - ppm[k]
        self.mean, self.std = float(diffs.mean()), float(diffs.std())
        self.z = ((diffs - self.mean) / self.std).astype(np.float32)
        targets = np.arange(T, len(self.z))  # predict z[t] from z[t-T:t]
        cut = len(self.z) - self.VALIDATION_MONTHS
        self.train_targets, self.val_targets = targets[targets < cut], targets[targets >= cut]
        if len(self.train_targets) < cfg.batch_size:
            raise TrainArgumentError(
                "--length",
                T,
                f"a window short enough to leave at least --batch-size "
                f"({cfg.batch_size}) training windows in {n_train} training months",
            )
        self.n_train = n_train

    def _windows(self, targets):
        T = self.length
        x = self.z[targets[:, None] - T + np.arange(T)[None, :]][..., None]
        return x, self.z[targets][:, None]

    @property
    def steps_per_epoch(self):
        return self.cfg.steps_per_epoch or -(-len(self.train_targets) // self.cfg.batch_size)

    def train_batch(self, index):
        epoch, step = divmod(index, self.steps_per_epoch)
        order = self.rng(TRAIN, epoch).permutation(len(self.train_targets))
        B = self.cfg.batch_size
        chosen = np.resize(order, self.steps_per_epoch * B)[step * B : (step + 1) * B]
        return self._windows(self.train_targets[chosen])

    def validation_data(self):
        return self._windows(self.val_targets)

    def build_model(self):
        inputs = keras.Input((None, 1), name="monthly_change")  # trained on windows of T months
        h = recurrent_layer(self.cfg, return_sequences=False)(inputs)
        return keras.Model(inputs, keras.layers.Dense(1, dtype="float32", name="next_change")(h), name="co2")

    def loss_and_metrics(self):
        return "mse", [keras.metrics.MeanAbsoluteError(name="mae")]

    def forecast(self, model) -> np.ndarray:
        """ppm for the test months, each month predicted from the model's own earlier predictions."""
        T = self.length
        window = list(self.z[-T:])
        level, out = self.ppm[self.n_train - 1], []
        for _ in range(self.TEST_MONTHS):
            z = float(ops.convert_to_numpy(model(np.asarray(window[-T:], np.float32)[None, :, None]))[0, 0])
            window.append(z)
            level = level + z * self.std + self.mean
            out.append(level)
        return np.asarray(out)

    def finish(self, model, out_dir):
        from keras_lstm.train.plots import plot_forecast

        truth = self.ppm[self.n_train :]
        forecast = self.forecast(model)
        # Seasonal naive with drift: last training year repeated, raised by the mean yearly rise.
        last_year = self.ppm[self.n_train - 12 : self.n_train]
        rise = 12 * self.mean
        naive = np.array([last_year[k % 12] + rise * (k // 12 + 1) for k in range(self.TEST_MONTHS)])
        rmse = lambda p: float(np.sqrt(np.mean((p - truth) ** 2)))  # noqa: E731
        plot_forecast(os.path.join(out_dir, "forecast.png"), self.months, self.ppm, self.n_train, forecast)
        return {
            "forecast_months": self.TEST_MONTHS,
            "forecast_rmse_ppm": rmse(forecast),
            "seasonal_naive_rmse_ppm": rmse(naive),
        }


_TASKS = {"adding": Adding, "copy": Copy, "charlm": CharLM, "co2": CO2}


def make_task(cfg: TrainConfig) -> Task:
    if cfg.task == "series":
        from keras_lstm.train.series import Series

        return Series(cfg)
    if cfg.task == "classify":
        from keras_lstm.train.classify import Classify

        return Classify(cfg)
    return _TASKS[cfg.task](cfg)
