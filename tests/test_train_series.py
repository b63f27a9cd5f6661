"""`keras-lstm train series`: a real series that statsmodels ships, written to CSV, trained, compared with its
baselines (recomputed here by NumPy), exported and served over gRPC with raw values in and the target's units out."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import keras
import numpy as np
import pytest
from serving_helpers import ServerProcess

from keras_lstm.cli import main
from keras_lstm.train import baselines
from keras_lstm.train.config import TrainConfig
from keras_lstm.train.examples import write_sunspots_csv
from keras_lstm.train.runner import train
from serving import Client

pytestmark = pytest.mark.timeout(600)

WINDOW, SEASON = 12, 11


def read_series(path):
    with open(path) as f:
        rows = list(csv.DictReader(f))
    return np.array([float(r["SUNACTIVITY"]) for r in rows])


# The baselines against loops written out here -----------------------------------------------------------
def test_baselines_match_loops_written_out():
    rng = np.random.default_rng(0)
    y = rng.normal(size=60).cumsum()
    ends, K, S = np.arange(10, 55), 3, 4
    truth = np.array([[y[t + k] for k in range(K)] for t in ends])
    naive = np.array([[y[t - 1]] * K for t in ends])
    seasonal = np.array([[y[t + k - S * (k // S + 1)] for k in range(K)] for t in ends])
    np.testing.assert_array_equal(baselines.persistence(y, ends, K), naive)
    np.testing.assert_array_equal(baselines.seasonal_naive(y, ends, K, S), seasonal)
    np.testing.assert_array_equal(baselines.targets_of(y, ends, K), truth)
    scale = np.mean([abs(y[i] - y[i - S]) for i in range(S, 40)])
    assert baselines.mase_scale(y[:40], S) == pytest.approx(scale)
    got = baselines.errors(naive, truth, scale)
    assert got["mae"] == pytest.approx(np.mean(np.abs(naive - truth)))
    assert got["rmse"] == pytest.approx(np.sqrt(np.mean((naive - truth) ** 2)))
    assert got["mase"] == pytest.approx(got["mae"] / scale)

    # Linear AR: the same least squares by numpy.linalg.lstsq on the design matrix built row by row.
    inputs = np.stack([y, np.sin(np.arange(60))], axis=1)
    T, train_ends = 5, np.arange(5, 40)
    design = np.array([np.r_[inputs[t - T : t].ravel(), 1.0] for t in train_ends])
    w, *_ = np.linalg.lstsq(design, np.array([[y[t + k] for k in range(K)] for t in train_ends]), rcond=None)
    ar = baselines.LinearAR(T, K, ridge=0.0).fit(inputs, y, train_ends)
    test = np.array([np.r_[inputs[t - T : t].ravel(), 1.0] for t in ends])
    np.testing.assert_allclose(ar.predict(inputs, ends), test @ w, rtol=1e-6, atol=1e-8)


# A real series, end to end -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sunspots_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("sunspots")
    path = write_sunspots_csv(work / "sunspots.csv")
    cfg = TrainConfig(
        "series",
        csv=str(path),
        target="SUNACTIVITY",
        time_col="YEAR",
        length=WINDOW,
        season=SEASON,
        units=16,
        epochs=60,
        seed=1,
        verbose=0,
    )
    result = train(cfg, run_dir=str(work / "run"))
    return work, path, result


def test_sunspots_beats_persistence_and_reports_honest_baselines(sunspots_run):
    _work, path, result = sunspots_run
    m, run = result.metrics, result.run_dir
    y = read_series(path)
    N = len(y)
    a, b = N - 2 * round(0.15 * N), N - round(0.15 * N)  # the training rows end at a, the test rows start at b
    ends = np.arange(b, N)
    truth = y[ends]
    # Persistence and the seasonal naive forecast, here by hand; MASE scaled by the seasonal naive in-sample MAE.
    scale = np.mean(np.abs(y[SEASON:a] - y[: a - SEASON]))
    assert m["test"]["persistence"]["mae"] == pytest.approx(np.mean(np.abs(y[ends - 1] - truth)))
    assert m["test"]["seasonal_naive"]["mae"] == pytest.approx(np.mean(np.abs(y[ends - SEASON] - truth)))
    assert m["test"]["persistence"]["mase"] == pytest.approx(np.mean(np.abs(y[ends - 1] - truth)) / scale)
    # The LSTM's own test error, recomputed from model.keras on windows cut here from the raw CSV.
    model = keras.saving.load_model(os.path.join(run, "model.keras"))
    x = np.stack([y[t - WINDOW : t] for t in ends])[..., None].astype(np.float32)
    forecast = np.asarray(model(x))[:, 0]
    assert m["test"]["lstm"]["mae"] == pytest.approx(np.mean(np.abs(forecast - truth)), rel=1e-5)
    assert m["test_windows"] == len(ends) and m["split_rows"] == [a, b, N]
    # Done when: it beats persistence on the test part.
    assert m["lstm_beats"]["persistence"], m["summary"]
    assert m["test"]["lstm"]["mae"] < 0.8 * m["test"]["persistence"]["mae"]
    for name in ("forecast.png", "learning_curve.png", "config.json", "model.keras", "metrics.csv"):
        assert os.path.isfile(os.path.join(run, name)), name
    assert os.listdir(os.path.join(run, "tensorboard")) and not os.path.exists(os.path.join(run, "backup"))
    assert len(os.listdir(os.path.join(run, "checkpoints"))) == len(m["epochs"])
    saved = json.loads(Path(os.path.join(run, "config.json")).read_text())
    assert len(saved["csv_sha256"]) == 64 and saved["target"] == "SUNACTIVITY"


def test_served_forecaster_takes_raw_values_and_answers_in_units(sunspots_run):
    """Exported with `keras-lstm export RUN`, served, queried over gRPC with the raw yearly counts."""
    work, path, result = sunspots_run
    base = work / "models"
    assert main(["export", result.run_dir, "--name", "sunspots", "--base", str(base)]) == 0
    y = read_series(path)
    x = np.stack([y[t - WINDOW : t] for t in range(len(y) - 20, len(y))])[..., None].astype(np.float32)
    model = keras.saving.load_model(os.path.join(result.run_dir, "model.keras"))
    expected = np.asarray(model(x))
    proc = ServerProcess(["--model-config", str(base / "models.config")], work)
    try:
        with Client(proc.wait_listening(), model="sunspots", timeout_s=30.0) as client:
            client.wait_until_ready(timeout_s=60)
            served = client.predict(x)["outputs"]
            lengths = np.full(len(x), WINDOW - 3, np.int32)  # padded: the last 3 steps ignored
            padded = client.predict(np.concatenate([x[:, 3:], np.zeros_like(x[:, :3])], axis=1), lengths)["outputs"]
            state = client.run("init_state", {"batch_size": np.int32(len(x))})
            for t in range(WINDOW):  # the step signature: the same forecast, one year at a time
                state = client.run("step", {"x": x[:, t], "h": state["h"], "c": state["c"]})
    finally:
        proc.terminate()
    np.testing.assert_allclose(served, expected, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(padded, np.asarray(model(x[:, 3:])), rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(state["outputs"], expected, rtol=1e-4, atol=1e-3)
    assert served.min() >= 0 and served.max() < 300  # sunspot counts, not standardised values


def test_features_and_a_multi_step_horizon(tmp_path):
    """A feature that leads the target, a 3-step horizon: every reported error recomputed here over all 3 steps."""
    rng = np.random.default_rng(0)
    n = 400
    driver = np.sin(np.arange(n) / 5.0) * 10 + rng.normal(0, 0.5, n)
    target = 100 + np.r_[0.0, 3 * driver[:-1]] + rng.normal(0, 0.5, n)
    path = tmp_path / "plant.csv"
    path.write_text(
        "step,output,valve\n"
        + "".join(f"{i},{t:.4f},{d:.4f}\n" for i, (t, d) in enumerate(zip(target, driver, strict=True)))
    )
    cfg = TrainConfig(
        "series",
        csv=str(path),
        target="output",
        features="valve",
        time_col="step",
        length=8,
        horizon=3,
        units=8,
        epochs=3,
        seed=0,
        verbose=0,
    )
    m = train(cfg, run_dir=str(tmp_path / "run")).metrics
    assert m["columns"] == ["output", "valve"] and m["horizon"] == 3
    b = n - round(0.15 * n)
    ends = np.arange(b, n - 2)
    truth = np.stack([target[ends + k] for k in range(3)], axis=1)
    x = np.stack([np.stack([target[t - 8 : t], driver[t - 8 : t]], axis=1) for t in ends]).astype(np.float32)
    model = keras.saving.load_model(str(tmp_path / "run" / "model.keras"))
    forecast = np.asarray(model(x))
    assert forecast.shape == (len(ends), 3) and m["test_windows"] == len(ends)
    assert m["test"]["lstm"]["mae"] == pytest.approx(np.mean(np.abs(forecast - truth)), rel=1e-4)
    assert m["test"]["lstm"]["rmse"] == pytest.approx(np.sqrt(np.mean((forecast - truth) ** 2)), rel=1e-4)
    assert m["test"]["persistence"]["mae"] == pytest.approx(np.mean(np.abs(target[ends - 1][:, None] - truth)))
    assert m["test"]["linear_ar"]["mae"] < m["test"]["persistence"]["mae"]  # the valve leads the output
