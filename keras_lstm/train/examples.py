"""Example CSVs for ``train series`` and ``train classify``, made from data a package ships or generated here.

* :func:`write_sunspots_csv`: statsmodels' yearly sunspot numbers, 1700-2008 (columns YEAR, SUNACTIVITY).
* :func:`write_labelled_sequences_csv`: long-format sequences of varying length with string labels, whose
  best possible accuracy is known (a fraction ``flip`` of the labels is replaced at random).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

__all__ = ["SHAPES", "write_labelled_sequences_csv", "write_sunspots_csv"]


def write_sunspots_csv(path) -> Path:
    """statsmodels' ``sunspots`` data set as a CSV: YEAR (1700 .. 2008), SUNACTIVITY."""
    from statsmodels.datasets import sunspots

    path = Path(path)
    sunspots.load_pandas().data.to_csv(path, index=False)
    return path


SHAPES = ("rising", "falling", "wave", "flat")


def _shape(rng: np.random.Generator, label: str, n: int) -> np.ndarray:
    """(n, 2): a level following the class's shape, and a second feature of pure noise."""
    t = np.linspace(0.0, 1.0, n)
    level = {
        "rising": 4.0 * t,
        "falling": 4.0 - 4.0 * t,
        "wave": 2.0 + 2.0 * np.sin(2 * np.pi * 2.0 * t),
        "flat": np.full(n, 2.0),
    }[label]
    return np.stack([20.0 + 5.0 * level + rng.normal(0.0, 1.5, n), rng.normal(100.0, 10.0, n)], axis=1)


def write_labelled_sequences_csv(
    path, sequences: int = 400, seed: int = 0, flip: float = 0.1, min_length: int = 8, max_length: int = 40
) -> tuple[Path, np.ndarray]:
    """Long-format rows ``id,t,level,noise,label``, one row per step, sequences shuffled row-wise by time.

    Each sequence's class (one of :data:`SHAPES`) draws its shape; its length is uniform in
    [min_length, max_length]. With probability ``flip`` the written label is replaced by a class drawn
    uniformly from the others, so no classifier can beat ``1 - flip`` on average. Returns the path and,
    per sequence, whether its label is the true one (the best any classifier can do is their mean).
    """
    rng = np.random.default_rng(seed)
    path = Path(path)
    honest = np.ones(sequences, bool)
    rows = []
    for i in range(sequences):
        label = SHAPES[int(rng.integers(len(SHAPES)))]
        values = _shape(rng, label, int(rng.integers(min_length, max_length + 1)))
        written = label
        if rng.random() < flip:
            written = str(rng.choice([s for s in SHAPES if s != label]))
            honest[i] = False
        rows += [(f"seq-{i:05d}", step, f"{v[0]:.4f}", f"{v[1]:.4f}", written) for step, v in enumerate(values)]
    order = rng.permutation(len(rows))  # the file's rows in no order: --time-col puts them back
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "t", "level", "noise", "label"])
        writer.writerows(rows[k] for k in order)
    return path, honest
