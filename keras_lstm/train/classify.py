"""``keras-lstm train classify --csv FILE --id-col ID --label-col Y``: label whole sequences of the user's CSV.

The CSV is in long format: one row per time step, the rows of a sequence sharing its ``--id-col`` value
(in any order in the file; ``--time-col`` orders them, else the file's order does), every row of a
sequence carrying the same ``--label-col`` value. Labels may be any strings: the vocabulary is sorted,
saved as ``RUN/classes.json``, and the export serves it as a ``classes`` output beside the probabilities.

Sequences, never rows, are split: 70% train, 15% validation, 15% test within each class (stratified).
They vary in length, so each batch is padded with :data:`PAD` and a ``keras.layers.Masking`` layer marks
those steps; the mask goes through the ``Normalization`` (fitted on the training rows) to the LSTM, whose
mask path leaves the state untouched there. A served client sends raw values and ``lengths`` (the
``padded`` signature) or rows of one length (``serving_default``).
"""

from __future__ import annotations

import json
import os

import keras
import numpy as np

from keras_lstm.export.source import CLASSES_FILE  # the export reads it back as the `classes` output
from keras_lstm.train.config import TrainConfig
from keras_lstm.train.csvfile import fill_missing, header_of, order_by_time, read_table
from keras_lstm.train.errors import CSVFormatError, required
from keras_lstm.train.models import recurrent_layer
from keras_lstm.train.problems import TRAIN, Task
from keras_lstm.train.series import check_csv_hash, columns_of

__all__ = ["CLASSES_FILE", "PAD", "Classify", "confusion_matrix", "pad_sequences"]

PAD = -1.0e9  # fills the steps past a sequence's end; a row of real data equal to it in every column is refused
LENGTH_BUCKET = 16  # batches are padded to a multiple of this, so XLA compiles a few loop lengths, not one per length
SPLIT_STREAM = 2


def pad_sequences(values: np.ndarray, offsets: np.ndarray, chosen: np.ndarray, bucket: int = LENGTH_BUCKET):
    """(len(chosen), L, F) float32: the chosen sequences of the flat ``values`` (rows ``offsets[i] ..
    offsets[i+1]``), padded with PAD to L, their longest rounded up to ``bucket``."""
    lengths = offsets[chosen + 1] - offsets[chosen]
    L = int(-(-max(int(lengths.max()), 1) // bucket) * bucket)
    out = np.full((len(chosen), L, values.shape[1]), PAD, np.float32)
    for row, (i, n) in enumerate(zip(chosen, lengths, strict=True)):
        out[row, :n] = values[offsets[i] : offsets[i] + n]
    return out


def confusion_matrix(truth: np.ndarray, predicted: np.ndarray, classes: int) -> np.ndarray:
    """(classes, classes): row the true class, column the predicted one."""
    return np.bincount(truth * classes + predicted, minlength=classes * classes).reshape(classes, classes)


class Classify(Task):
    name = "classify"
    chance_name = "class frequencies (validation cross-entropy)"
    time_varies = True
    VALIDATION_FRACTION = 0.15
    TEST_FRACTION = 0.15

    def __init__(self, cfg: TrainConfig):
        super().__init__(cfg)
        check_csv_hash(cfg)
        path, ids = required(cfg.csv, "--csv"), required(cfg.id_col, "--id-col")
        label_col, missing = required(cfg.label_col, "--label-col"), required(cfg.missing, "--missing")
        special = {ids, label_col, cfg.time_col}
        self.columns = columns_of(cfg.features) or [c for c in header_of(path) if c not in special]
        if not self.columns:
            raise CSVFormatError(path, 1, None, f"no feature column besides {ids!r} and {label_col!r}")
        table = read_table(path, self.columns, text=(ids, label_col), time_col=cfg.time_col, missing=missing)
        group = table.codes[ids]
        if cfg.time_col:
            table, _ = order_by_time(table, cfg.time_col, groups=group)
        else:
            table = table.take(np.argsort(group, kind="stable"))  # each sequence's rows in file order
        group, label = table.codes[ids], table.codes[label_col]
        starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
        self._check_labels(table, group, label, starts)
        values = np.stack([table.numbers[c] for c in self.columns], axis=1)  # (rows, F) float64
        self.filled = fill_missing(values, missing, starts)
        bad = np.argwhere(np.isnan(values))
        if len(bad):
            r, c = bad[0]
            raise CSVFormatError(
                path,
                int(table.lines[r]),
                self.columns[c],
                "no value in this column for the whole "
                f"sequence {table.names[ids][group[r]]!r}, so there is nothing to fill from",
            )
        padded = np.all(values == PAD, axis=1)
        if padded.any():
            raise CSVFormatError(
                path,
                int(table.lines[np.argmax(padded)]),
                None,
                f"every feature equals the padding value {PAD:g}, which marks the steps past a sequence's end",
            )
        names = table.names[label_col]
        self.classes = sorted(names)
        relabel = np.array([self.classes.index(n) for n in names])
        self.labels = relabel[label[starts]]  # (S,) class index per sequence
        self.offsets = np.r_[starts, len(values)]  # sequence i: rows offsets[i] .. offsets[i+1]
        self.values = values.astype(np.float32)
        self.first_lines = table.lines[starts]
        self.sequence_ids = [table.names[ids][g] for g in group[starts]]
        self._split(path, label_col)
        rows = np.concatenate([np.arange(self.offsets[i], self.offsets[i + 1]) for i in self.train])
        self.mean, self.variance = values[rows].mean(axis=0), values[rows].var(axis=0)
        self.variance = np.where(self.variance == 0, 1.0, self.variance)
        prior = np.bincount(self.labels[self.train], minlength=len(self.classes)) / len(self.train)
        self.majority = int(np.argmax(prior))
        self.chance_loss = float(-np.mean(np.log(np.maximum(prior[self.labels[self.val]], 1e-12))))

    def _check_labels(self, table, group, label, starts) -> None:
        changed = np.flatnonzero((group[1:] == group[:-1]) & (label[1:] != label[:-1])) + 1
        if len(changed):
            r = changed[0]
            label_names, id_names = table.names[self.cfg.label_col], table.names[self.cfg.id_col]
            raise CSVFormatError(
                table.path,
                int(table.lines[r]),
                self.cfg.label_col,
                (
                    f"sequence {id_names[group[r]]!r} is labelled {label_names[label[r]]!r} here and "
                    f"{label_names[label[r - 1]]!r} on line {int(table.lines[r - 1])}; a sequence has one label"
                ),
            )

    def _split(self, path, label_col) -> None:
        """Stratified by class: each class's sequences shuffled once (seeded) and cut 70 / 15 / 15."""
        rng = self.rng(SPLIT_STREAM, 0)
        parts: tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]] = ([], [], [])  # test, validation, train
        for k, name in enumerate(self.classes):
            members = rng.permutation(np.flatnonzero(self.labels == k))
            if len(members) < 3:
                raise CSVFormatError(
                    path,
                    int(self.first_lines[members[0]]),
                    label_col,
                    (
                        f"the class {name!r} has {len(members)} sequence{'s' if len(members) != 1 else ''}; "
                        "a split into "
                        "training, validation and test sequences needs at least 3 of each class"
                    ),
                )
            n_test = max(1, round(len(members) * self.TEST_FRACTION))
            n_val = max(1, round(len(members) * self.VALIDATION_FRACTION))
            parts[2].append(members[:n_test])
            parts[1].append(members[n_test : n_test + n_val])
            parts[0].append(members[n_test + n_val :])
        self.train, self.val, self.test = (np.sort(np.concatenate(p)) for p in parts)

    # Task ----------------------------------------------------------------------------------------------
    @property
    def steps_per_epoch(self):
        return self.cfg.steps_per_epoch or -(-len(self.train) // self.cfg.batch_size)

    def batch(self, chosen: np.ndarray):
        return pad_sequences(self.values, self.offsets, chosen), self.labels[chosen].astype(np.int32)

    def train_batch(self, index):
        epoch, step = divmod(index, self.steps_per_epoch)
        order = self.rng(TRAIN, epoch).permutation(len(self.train))
        B = self.cfg.batch_size
        return self.batch(self.train[np.resize(order, self.steps_per_epoch * B)[step * B : (step + 1) * B]])

    def validation_data(self):
        return self.batch(self.val)

    def build_model(self):
        F = len(self.columns)
        inputs = keras.Input((None, F), name="steps")  # raw values; PAD past each sequence's end
        h = keras.layers.Masking(PAD, name="mask")(inputs)
        h = keras.layers.Normalization(
            mean=self.mean.tolist(), variance=self.variance.tolist(), dtype="float32", name="scale"
        )(h)
        h = recurrent_layer(self.cfg, return_sequences=False)(h)
        out = keras.layers.Dense(len(self.classes), activation="softmax", dtype="float32", name="probabilities")(h)
        return keras.Model(inputs, out, name="classify")

    def loss_and_metrics(self):
        return "sparse_categorical_crossentropy", [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]

    def save_assets(self, out_dir):
        with open(os.path.join(out_dir, CLASSES_FILE), "w", encoding="utf-8") as f:
            json.dump(self.classes, f)

    def predict(self, model, chosen: np.ndarray, batch: int = 256) -> np.ndarray:
        """Class probabilities (n, C) of the chosen sequences."""
        out = [
            np.asarray(model.predict_on_batch(self.batch(chosen[a : a + batch])[0]))
            for a in range(0, len(chosen), batch)
        ]
        return np.concatenate(out)

    def finish(self, model, out_dir):
        from keras_lstm.train.plots import plot_confusion

        truth = self.labels[self.test]
        predicted = np.argmax(self.predict(model, self.test), axis=-1)
        matrix = confusion_matrix(truth, predicted, len(self.classes))
        accuracy = float(np.mean(predicted == truth))
        majority = float(np.mean(truth == self.majority))
        plot_confusion(
            os.path.join(out_dir, "confusion.png"),
            matrix,
            self.classes,
            f"test: accuracy {accuracy:.3f} ({len(truth)} sequences)",
        )
        lengths = np.diff(self.offsets)
        return {
            "columns": self.columns,
            "classes": self.classes,
            "sequences": len(self.labels),
            "length_range": [int(lengths.min()), int(lengths.max())],
            "split_sequences": [len(self.train), len(self.val), len(self.test)],
            "filled_cells": self.filled,
            "test_accuracy": accuracy,
            "majority_class": self.classes[self.majority],
            "majority_accuracy": majority,
            "confusion_matrix": matrix.tolist(),
            "lstm_beats": {"majority_class": accuracy > majority},
            "summary": _summary(self.classes, matrix, accuracy, majority, self.classes[self.majority]),
        }


def _summary(classes, matrix, accuracy, majority, majority_name) -> list[str]:
    width = max(8, *(len(c) + 1 for c in classes))
    lines = [
        f"test: {int(matrix.sum())} sequences, accuracy {accuracy:.3f}; majority class {majority_name!r}: "
        f"{majority:.3f}",
        "confusion matrix (rows: true, columns: predicted):",
        " " * width + "".join(f"{c:>{width}}" for c in classes),
    ]
    lines += [
        f"{c:>{width}}" + "".join(f"{int(v):>{width}}" for v in row) for c, row in zip(classes, matrix, strict=True)
    ]
    if accuracy <= majority:
        lines.append("The LSTM does NOT beat always answering the majority class on the test part.")
    return lines
