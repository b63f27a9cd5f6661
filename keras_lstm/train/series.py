"""``keras-lstm train series --csv FILE --target COL``: forecast a column of the user's CSV.

The rows (sorted by ``--time-col`` when given) are split in time: the first 70% train, the next 15%
validate (early stopping), the last 15% test, and never shuffled across those borders. A window ending
at row ``t`` reads rows ``t-T .. t-1`` of the target and the ``--features`` columns and forecasts the target
at rows ``t .. t+K-1`` (``--window T``, ``--horizon K``); it belongs to the part its targets fall in, so
its inputs may reach back into the part before, as they would in use.

The model takes raw values and answers in the target's units: a ``keras.layers.Normalization`` holding
the training rows' mean and variance scales the inputs, and a second one, inverted, turns the forecast
back into the target's units. So the exported model needs nothing from the client but what it measured.

On the test windows the LSTM is compared with persistence, the seasonal naive forecast (``--season S``)
and a linear autoregression (:mod:`keras_lstm.train.baselines`): MAE, RMSE and MASE in ``metrics.json``
and on the console, with a plain sentence when the LSTM does not beat one of them.
"""

from __future__ import annotations

import os

import keras
import numpy as np

from keras_lstm.train import baselines
from keras_lstm.train.config import TrainConfig
from keras_lstm.train.csvfile import fill_missing, order_by_time, read_table, sha256_of
from keras_lstm.train.errors import CSVFormatError, TrainArgumentError, required
from keras_lstm.train.models import recurrent_layer
from keras_lstm.train.problems import TRAIN, Task

__all__ = ["PREDICT_BATCH", "Series", "check_csv_hash", "columns_of", "time_gaps"]

PREDICT_BATCH = 1024


def columns_of(text: str | None) -> list[str]:
    """``"a,b, c"`` -> ``["a", "b", "c"]``; None -> []."""
    return [c.strip() for c in (text or "").split(",") if c.strip()]


def check_csv_hash(cfg: TrainConfig) -> None:
    """Refuse a CSV that is not the file the run was started on (config.json's csv_sha256)."""
    if cfg.csv is not None and cfg.csv_sha256 is not None and sha256_of(cfg.csv) != cfg.csv_sha256:
        raise TrainArgumentError(
            "--csv", cfg.csv, f"the file the run was started on (SHA-256 {cfg.csv_sha256}); it has changed since"
        )


def time_gaps(times: np.ndarray, lines: np.ndarray, is_date: bool, limit: int = 5) -> dict:
    """The usual step between rows (the median) and the steps longer than 1.5 times it (not filled)."""
    if len(times) < 2:
        return {"step": None, "gaps": 0, "first": []}
    steps = np.diff(times)
    usual = float(np.median(steps))
    where = np.flatnonzero(steps > 1.5 * usual)
    show = (lambda t: str(np.datetime64(int(t), "s"))) if is_date else (lambda t: f"{t:g}")
    first = [f"line {int(lines[k + 1])}: {show(times[k])} -> {show(times[k + 1])}" for k in where[:limit]]
    return {"step": usual if not is_date else f"{usual / 86400:g} days", "gaps": len(where), "first": first}


class Series(Task):
    name = "series"
    chance_name = "persistence (validation MSE)"
    VALIDATION_FRACTION = 0.15
    TEST_FRACTION = 0.15

    def __init__(self, cfg: TrainConfig):
        super().__init__(cfg)
        check_csv_hash(cfg)
        self.csv, self.target = required(cfg.csv, "--csv"), required(cfg.target, "--target")
        self.T, self.K = required(cfg.length, "--window"), required(cfg.horizon, "--horizon")
        missing = required(cfg.missing, "--missing")
        self.columns = list(dict.fromkeys([self.target, *columns_of(cfg.features)]))  # the target first
        table = read_table(self.csv, self.columns, time_col=cfg.time_col, missing=missing)
        self.notes: list[str] = []
        self.gaps: dict | None = None
        if cfg.time_col:
            table, moved = order_by_time(table, cfg.time_col)
            if moved:
                self.notes.append(f"the rows were out of time order in the file; sorted by {cfg.time_col!r}")
            self.gaps = time_gaps(table.time_values(), table.lines, table.time_is_date)
            if self.gaps["gaps"]:
                self.notes.append(
                    f"{self.gaps['gaps']} gaps longer than 1.5x the usual step ({self.gaps['step']}); "
                    f"rows are used as evenly spaced (first: {self.gaps['first'][0]})"
                )
        values = np.stack([table.numbers[c] for c in self.columns], axis=1)  # (N, F) float64
        self.filled = fill_missing(values, missing)
        if self.filled:
            self.notes.append(f"{self.filled} missing cells filled by --missing {cfg.missing}")
        for j, column in enumerate(self.columns):
            if np.isnan(values[:, j]).all():
                raise CSVFormatError(self.csv, int(table.lines[0]), column, "no value in the whole column")
        self._split(table, values)
        del table

    def _split(self, table, values) -> None:
        cfg = self.cfg
        N, T, K = len(values), self.T, self.K
        n_test, n_val = round(N * self.TEST_FRACTION), round(N * self.VALIDATION_FRACTION)
        a, b = N - n_val - n_test, N - n_test  # train rows [0, a), validation [a, b), test [b, N)
        self.train_ends = np.arange(T, a - K + 1)
        self.val_ends = np.arange(max(a, T), b - K + 1)
        self.test_ends = np.arange(max(b, T), N - K + 1)
        need = int(np.ceil((T + 3 * K) / (1 - self.VALIDATION_FRACTION - self.TEST_FRACTION)))
        if min(len(self.train_ends), len(self.val_ends), len(self.test_ends)) < 1:
            raise CSVFormatError(
                self.csv,
                int(table.lines[-1]),
                self.target,
                (
                    f"only {N} data row{'s' if N != 1 else ''}: --window {T} and --horizon {K} need at least "
                    f"about {need} "
                    "rows, so that the training (70%), validation (15%) and test (15%) parts each hold a whole window"
                ),
            )
        if cfg.season is not None and cfg.season >= a:
            raise TrainArgumentError("--season", cfg.season, f"shorter than the {a} training rows")
        self.n_train, self.bounds = a, (a, b)
        self.mean, self.variance = values[:a].mean(axis=0), values[:a].var(axis=0)
        constant = [c for c, v in zip(self.columns, self.variance, strict=True) if v == 0]
        if constant:
            self.notes.append(f"constant over the training rows, so left unscaled: {', '.join(constant)}")
            self.variance = np.where(self.variance == 0, 1.0, self.variance)
        self.inputs = values.astype(np.float32)  # raw: the model scales them
        self.y = values[:, 0].copy()  # the target, float64
        self.times, self.is_date = table.times, table.time_is_date
        val = self.val_ends
        self.chance_loss = float(
            np.mean((baselines.persistence(self.y, val, K) - baselines.targets_of(self.y, val, K)) ** 2)
        )

    # Task ----------------------------------------------------------------------------------------------
    def windows(self, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """x (n, T, F) float32 raw inputs, y (n, K) float32 targets."""
        T = self.T
        x = self.inputs[ends[:, None] - T + np.arange(T)[None, :]]
        return x, baselines.targets_of(self.y, ends, self.K).astype(np.float32)

    @property
    def steps_per_epoch(self):
        return self.cfg.steps_per_epoch or -(-len(self.train_ends) // self.cfg.batch_size)

    def train_batch(self, index):
        epoch, step = divmod(index, self.steps_per_epoch)
        order = self.rng(TRAIN, epoch).permutation(len(self.train_ends))
        B = self.cfg.batch_size
        chosen = np.resize(order, self.steps_per_epoch * B)[step * B : (step + 1) * B]
        return self.windows(self.train_ends[chosen])

    def validation_data(self):
        ends = self.val_ends
        if self.cfg.validation_size and self.cfg.validation_size < len(ends):  # evenly spaced, for a large file
            ends = ends[np.linspace(0, len(ends) - 1, self.cfg.validation_size).astype(np.int64)]
        return self.windows(ends)

    def build_model(self):
        F, K = len(self.columns), self.K
        inputs = keras.Input((None, F), name="window")  # raw values, the target first
        h = keras.layers.Normalization(
            mean=self.mean.tolist(), variance=self.variance.tolist(), dtype="float32", name="scale"
        )(inputs)
        h = recurrent_layer(self.cfg, return_sequences=False)(h)
        h = keras.layers.Dense(K, dtype="float32", name="forecast_scaled")(h)
        out = keras.layers.Normalization(
            mean=float(self.mean[0]),
            variance=float(self.variance[0]),
            axis=None,
            invert=True,
            dtype="float32",
            name="forecast",
        )(h)
        return keras.Model(inputs, out, name="series")

    def loss_and_metrics(self):
        return "mse", [keras.metrics.MeanAbsoluteError(name="mae")]

    def predict(self, model, ends: np.ndarray) -> np.ndarray:
        """The model's forecasts (n, K) for the windows ending at ``ends``, in batches."""
        out = [
            np.asarray(model.predict_on_batch(self.windows(ends[a : a + PREDICT_BATCH])[0]), np.float64)
            for a in range(0, len(ends), PREDICT_BATCH)
        ]
        return np.concatenate(out) if out else np.zeros((0, self.K))

    def finish(self, model, out_dir):
        from keras_lstm.train.plots import plot_series_forecast

        cfg, ends, K = self.cfg, self.test_ends, self.K
        truth = baselines.targets_of(self.y, ends, K)
        forecasts = {"lstm": self.predict(model, ends), "persistence": baselines.persistence(self.y, ends, K)}
        if cfg.season:
            forecasts["seasonal_naive"] = baselines.seasonal_naive(self.y, ends, K, cfg.season)
        scaled = (self.inputs.astype(np.float64) - self.mean) / np.sqrt(self.variance)
        ar = baselines.LinearAR(self.T, K).fit(scaled, self.y, self.train_ends)
        forecasts["linear_ar"] = ar.predict(scaled, ends)
        scale = baselines.mase_scale(self.y[: self.n_train], cfg.season)
        table = {name: baselines.errors(f, truth, scale) for name, f in forecasts.items()}
        beaten = {name: table["lstm"]["mae"] < e["mae"] for name, e in table.items() if name != "lstm"}
        x_axis = self.times[ends] if self.times is not None else ends
        plot_series_forecast(
            os.path.join(out_dir, "forecast.png"),
            x_axis,
            self.is_date,
            truth[:, 0],
            {n: f[:, 0] for n, f in forecasts.items()},
            f"{self.target}: test part, 1 step ahead",
        )
        summary = self.notes + _summary(table, beaten, len(ends), K)
        return {
            "columns": self.columns,
            "rows": len(self.y),
            "split_rows": [self.n_train, *self.bounds[1:], len(self.y)],
            "test_windows": len(ends),
            "horizon": K,
            "season": cfg.season,
            "filled_cells": self.filled,
            "time_gaps": self.gaps,
            "test": table,
            "lstm_beats": beaten,
            "summary": summary,
        }


def _summary(table: dict, beaten: dict, n: int, K: int) -> list[str]:
    lines = [f"test: {n} windows, {K} step{'s' if K > 1 else ''} ahead", f"{'':16}{'MAE':>12}{'RMSE':>12}{'MASE':>8}"]
    for name, e in table.items():
        lines.append(f"{name:16}{e['mae']:12.5g}{e['rmse']:12.5g}{e['mase']:8.3f}")
    lost = [name for name, won in beaten.items() if not won]
    if lost:
        lines.append(
            f"The LSTM does NOT beat {', '.join(lost)} on the test part (MAE); use "
            f"{min(table, key=lambda k: table[k]['mae'])} instead, or give the LSTM more data or epochs."
        )
    else:
        lines.append(f"The LSTM beats every baseline on the test part (MAE {table['lstm']['mae']:.5g}).")
    return lines
