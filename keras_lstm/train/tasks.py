"""The data of the four tasks, as pure NumPy functions of a random generator.

* :func:`adding_batch`: the adding problem of Hochreiter & Schmidhuber (1997), experiment 4.
* :func:`copy_batch`: the copy-memory task in the setting of Arjovsky, Shah & Bengio (2016).
* :func:`load_text`: the charlm corpus (by default the Python standard library's own source).
* :func:`co2_monthly`: the Mauna Loa CO2 series that statsmodels ships (monthly means).
"""

from __future__ import annotations

import glob
import os

import numpy as np

__all__ = [
    "ADDING_CHANCE_MSE",
    "BLANK",
    "COPY_CLASSES",
    "COPY_SYMBOLS",
    "MARKER",
    "PAD",
    "adding_batch",
    "adding_length",
    "co2_monthly",
    "copy_baseline_loss",
    "copy_batch",
    "copy_length",
    "load_text",
    "stdlib_sources",
]

# Adding ----------------------------------------------------------------------------------------------
PAD = -2.0  # fills both features past a sequence's end; keras.layers.Masking(PAD) masks those steps
ADDING_CHANCE_MSE = 1.0 / 24.0  # always predicting 0.5: Var(0.5 + (X1+X2)/4) = 2·(1/3)/16


def adding_length(T: int) -> int:
    """The padded length of an adding batch: the longest sequence, T + T/10."""
    return T + T // 10


def adding_batch(rng: np.random.Generator, batch: int, T: int):
    """A batch of the adding problem: ``x`` (batch, T + T/10, 2), ``lengths`` (batch,), ``y`` (batch, 1).

    Each step is a pair (value ~ U[−1, 1], marker). A sequence's length is uniform in [T, T + T/10].
    One mark falls on one of the first 10 pairs (its value is X1), the other on a different one of
    the first T/2 − 1 pairs (X2). The first and last pairs, unless marked, have marker −1; all other
    markers are 0. Where the first pair is marked its value is set to 0, as in the paper. The target
    is 0.5 + (X1 + X2)/4. Steps past a sequence's length hold :data:`PAD` in both features.
    """
    L = adding_length(T)
    x = np.full((batch, L, 2), PAD, dtype=np.float32)
    y = np.empty((batch, 1), dtype=np.float32)
    lengths = rng.integers(T, L, size=batch, endpoint=True)
    second_span = T // 2 - 1
    for b, n in enumerate(lengths):
        values = rng.uniform(-1.0, 1.0, size=n)
        markers = np.zeros(n)
        markers[0] = markers[n - 1] = -1.0
        p1 = int(rng.integers(0, 10))
        candidates = np.delete(np.arange(second_span), p1) if p1 < second_span else np.arange(second_span)
        p2 = int(rng.choice(candidates))
        markers[[p1, p2]] = 1.0
        if p1 == 0 or p2 == 0:
            values[0] = 0.0
        x[b, :n, 0] = values
        x[b, :n, 1] = markers
        y[b, 0] = 0.5 + (values[p1] + values[p2]) / 4.0
    return x, lengths, y


# Copy ------------------------------------------------------------------------------------------------
COPY_SYMBOLS = 8  # data symbols 0..7
BLANK = 8
MARKER = 9
COPY_CLASSES = 10
COPY_RECALL = 10  # symbols to remember


def copy_length(T: int) -> int:
    return T + 2 * COPY_RECALL


def copy_baseline_loss(T: int) -> float:
    """Cross-entropy per step of the memoryless strategy: blanks, then uniform guesses: 10·ln 8 / (T + 20)."""
    return COPY_RECALL * float(np.log(COPY_SYMBOLS)) / copy_length(T)


def copy_batch(rng: np.random.Generator, batch: int, T: int):
    """A batch of the copy task: one-hot ``x`` (batch, T + 20, 10), integer ``y`` (batch, T + 20).

    Input: 10 symbols drawn uniformly from 8, then T − 1 blanks, then the marker, then 10 blanks
    (Arjovsky et al. 2016: T + 20 steps, so that the memoryless loss is 10·ln 8/(T + 20)).
    Target: T + 10 blanks, then the 10 symbols in order.
    """
    L = copy_length(T)
    symbols = rng.integers(0, COPY_SYMBOLS, size=(batch, COPY_RECALL))
    seq = np.full((batch, L), BLANK, dtype=np.int32)
    seq[:, :COPY_RECALL] = symbols
    seq[:, T + COPY_RECALL - 1] = MARKER
    target = np.full((batch, L), BLANK, dtype=np.int32)
    target[:, L - COPY_RECALL :] = symbols
    x = np.eye(COPY_CLASSES, dtype=np.float32)[seq]
    return x, target


# Charlm ----------------------------------------------------------------------------------------------
def stdlib_sources() -> list[str]:
    """The standard library's top-level ``*.py`` files on this machine, sorted."""
    return sorted(glob.glob(os.path.join(os.path.dirname(os.__file__), "*.py")))


def load_text(path: str | None, max_chars: int) -> str:
    """The text of ``path`` (UTF-8), or of the stdlib sources concatenated in order; at most max_chars."""
    if path is not None:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read(max_chars)
    parts, size = [], 0
    for name in stdlib_sources():
        with open(name, encoding="utf-8", errors="replace") as f:
            parts.append(f.read(max_chars - size))
        size += len(parts[-1])
        if size >= max_chars:
            break
    return "".join(parts)


# CO2 -------------------------------------------------------------------------------------------------
def co2_monthly():
    """(months as numpy datetime64[M], CO2 in ppm) of statsmodels' Mauna Loa weekly series, monthly means.

    Months without a reading are linearly interpolated.
    """
    from statsmodels.datasets import co2

    weekly = co2.load_pandas().data["co2"]
    monthly = weekly.resample("MS").mean().interpolate()
    return monthly.index.values.astype("datetime64[M]"), monthly.to_numpy(dtype=np.float64)
