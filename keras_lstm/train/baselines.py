"""Forecasting baselines and error measures, in NumPy, on the same windows as the LSTM.

A window ending at row ``t`` (exclusive) reads rows ``t-T .. t-1`` and forecasts the target at rows
``t .. t+K-1``. Every function takes the window ends ``ends`` (n,) and returns forecasts (n, K).

* :func:`persistence`: the last value seen, for every step ahead.
* :func:`seasonal_naive`: the value one season ``S`` before each forecast step, taken from the window's past.
* :class:`LinearAR`: least squares from the window's T×F inputs (plus a constant) to the K targets, fitted on
  the training windows by accumulating the normal equations chunk by chunk (memory O((TF)²), not O(n·TF)).

Errors (Hyndman & Koehler 2006): MAE, RMSE, and MASE, the MAE divided by the in-sample MAE of the naive
forecast (seasonal naive when ``S`` is given) over the training rows.
"""

from __future__ import annotations

import numpy as np

__all__ = ["LinearAR", "errors", "mase_scale", "persistence", "seasonal_naive", "targets_of"]

CHUNK = 4096


def targets_of(y: np.ndarray, ends: np.ndarray, horizon: int) -> np.ndarray:
    """(n, K): y[t .. t+K-1] for each window end t."""
    return y[ends[:, None] + np.arange(horizon)[None, :]]


def persistence(y: np.ndarray, ends: np.ndarray, horizon: int) -> np.ndarray:
    return np.repeat(y[ends - 1][:, None], horizon, axis=1)


def seasonal_naive(y: np.ndarray, ends: np.ndarray, horizon: int, season: int) -> np.ndarray:
    """Step k ahead (k = 0 .. K-1) takes y[t + k - S·(k//S + 1)]: the same phase in the last season seen."""
    k = np.arange(horizon)
    return y[ends[:, None] + (k - season * (k // season + 1))[None, :]]


class LinearAR:
    """A linear autoregression on the window: ``forecast = [inputs(T·F), 1] @ W``, W fitted by least squares."""

    def __init__(self, window: int, horizon: int, ridge: float = 1e-6):
        self.window, self.horizon, self.ridge = window, horizon, ridge
        self.weights: np.ndarray | None = None  # (T·F + 1, K), once fitted

    def _design(self, inputs: np.ndarray, ends: np.ndarray) -> np.ndarray:
        rows = inputs[ends[:, None] - self.window + np.arange(self.window)[None, :]]  # (n, T, F)
        return np.concatenate([rows.reshape(len(ends), -1), np.ones((len(ends), 1))], axis=1)

    def fit(self, inputs: np.ndarray, y: np.ndarray, ends: np.ndarray) -> LinearAR:
        """``inputs`` (N, F) standardised float64, ``y`` (N,) the target, ``ends`` the training windows."""
        p = self.window * inputs.shape[1] + 1
        xtx, xty = np.zeros((p, p)), np.zeros((p, self.horizon))
        for a in range(0, len(ends), CHUNK):
            chunk = ends[a : a + CHUNK]
            x = self._design(inputs, chunk)
            xtx += x.T @ x
            xty += x.T @ targets_of(y, chunk, self.horizon)
        xtx += self.ridge * np.trace(xtx) / p * np.eye(p)
        self.weights = np.linalg.solve(xtx, xty)
        return self

    def predict(self, inputs: np.ndarray, ends: np.ndarray) -> np.ndarray:
        weights = self.weights
        if weights is None:
            raise RuntimeError("LinearAR.predict before fit")
        out = [self._design(inputs, ends[a : a + CHUNK]) @ weights for a in range(0, len(ends), CHUNK)]
        return np.concatenate(out) if out else np.zeros((0, self.horizon))


def mase_scale(y_train: np.ndarray, season: int | None) -> float:
    """The in-sample MAE of the (seasonal) naive one-step forecast on the training rows."""
    m = season or 1
    return float(np.mean(np.abs(y_train[m:] - y_train[:-m])))


def errors(forecast: np.ndarray, truth: np.ndarray, scale: float) -> dict:
    """MAE, RMSE and MASE over every window and step ahead."""
    e = np.asarray(forecast, np.float64) - truth
    mae = float(np.mean(np.abs(e)))
    return {"mae": mae, "rmse": float(np.sqrt(np.mean(e**2))), "mase": mae / scale if scale > 0 else float("nan")}
