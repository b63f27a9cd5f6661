"""The run's figures: the learning curve, the forecasts (co2, series) and the confusion matrix (matplotlib, Agg)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

__all__ = ["plot_confusion", "plot_forecast", "plot_learning_curve", "plot_series_forecast"]


def plot_learning_curve(path, history, chance_loss, chance_name, solved_at, title=""):
    """Training and validation loss against sequences seen, with the chance level and the solve point."""
    fig, ax = plt.subplots(figsize=(7, 4.2))
    seqs = [r["sequences"] for r in history]
    for key, style in (("loss", "-"), ("val_loss", "--")):
        values = [r.get(key) for r in history]
        if any(v is not None for v in values):
            ax.plot(seqs, values, style, marker=".", label=key)
    if chance_loss is not None:
        ax.axhline(chance_loss, color="grey", linestyle=":", label=chance_name)
    if solved_at is not None:
        ax.axvline(solved_at, color="green", linestyle="-.", label=f"solved at {solved_at:,} sequences")
    ax.set_yscale("log")
    ax.set_xlabel("training sequences")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_forecast(path, months, ppm, n_train, forecast):
    """The CO2 series, with the free-running forecast over the held-out months."""
    fig, ax = plt.subplots(figsize=(8, 4.2))
    start = max(0, n_train - 240)
    ax.plot(months[start:n_train], ppm[start:n_train], color="black", lw=1, label="training data")
    ax.plot(months[n_train:], ppm[n_train:], color="tab:blue", lw=1.2, label="truth (held out)")
    ax.plot(months[n_train:], forecast, color="tab:red", lw=1.2, linestyle="--", label="LSTM forecast")
    ax.set_ylabel("CO2 (ppm)")
    ax.set_title("Mauna Loa CO2: forecast against the truth")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_series_forecast(path, x, is_date, truth, forecasts: dict, title):
    """The test part's truth against each method's forecast (one line per method)."""
    import numpy as np

    fig, ax = plt.subplots(figsize=(9, 4.2))
    x = np.asarray(x, "datetime64[s]") if is_date else x
    ax.plot(x, truth, color="black", lw=1.4, label="truth")
    styles = {
        "lstm": ("tab:red", "-"),
        "persistence": ("tab:grey", ":"),
        "seasonal_naive": ("tab:green", "--"),
        "linear_ar": ("tab:blue", "-."),
    }
    for name, values in forecasts.items():
        color, style = styles.get(name, (None, "-"))
        ax.plot(x, values, color=color, linestyle=style, lw=1.1, label=name)
    ax.set_title(title)
    ax.legend(loc="best", fontsize=8)
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_confusion(path, matrix, classes, title):
    """A confusion matrix: rows the true class, columns the predicted one, each cell its count."""
    n = len(classes)
    fig, ax = plt.subplots(figsize=(1.2 + 0.6 * n, 1.0 + 0.6 * n))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(n), classes, rotation=45, ha="right")
    ax.set_yticks(range(n), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    top = max(int(matrix.max()), 1)
    for i in range(n):
        for j in range(n):
            ax.text(
                j,
                i,
                str(int(matrix[i, j])),
                ha="center",
                va="center",
                color="white" if matrix[i, j] > top / 2 else "black",
                fontsize=8,
            )
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
