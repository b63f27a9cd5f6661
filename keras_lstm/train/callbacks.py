"""Callbacks of a run: the solved criterion, the run log (metrics.json, learning curve) and resumable state.

Keras's own callbacks do the rest (BackupAndRestore, ModelCheckpoint, CSVLogger, TensorBoard,
EarlyStopping). The two stateful callbacks here expose ``state()`` / ``load_state(dict)``, and
:class:`RunBackup` saves that state beside BackupAndRestore's weights at every epoch end, so a run
killed with SIGKILL resumes with its history and solve window intact.
"""

from __future__ import annotations

import collections
import json
import math
import os
import time

import keras

from keras_lstm.train.plots import plot_learning_curve

__all__ = ["ResumableEarlyStopping", "RunBackup", "RunLog", "SolveTracker", "backup_epoch", "write_json"]


def write_json(path: str, data) -> None:
    """Write atomically (a kill never leaves half a file)."""
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2)
    os.replace(tmp, path)


class SolveTracker(keras.callbacks.Callback):
    """Applies a :class:`~keras_lstm.train.problems.SolveRule` to the training batches as they pass.

    Keras logs each metric as its running mean over the epoch so far; the value of batch k alone is
    ``k·m_k − (k−1)·m_{k−1}``. The rule looks at the last ⌈window / batch_size⌉ batches, so every
    sequence counts with the weights it was trained on, as in the 1997 paper's online setting.
    """

    def __init__(self, rule, batch_size: int, steps_per_epoch: int, stop: bool):
        super().__init__()
        self.rule, self.batch_size, self.steps, self.stop = rule, batch_size, steps_per_epoch, stop
        self.window: collections.deque[dict] = collections.deque(maxlen=math.ceil(rule.window / batch_size))
        self.solved_at: int | None = None
        self._epoch = 0
        self._previous: dict[str, float] = {}

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch, self._previous = epoch, {}

    def on_train_batch_end(self, batch, logs=None):
        k = batch + 1
        values = {}
        for name in self.rule.bounds:
            running = float(logs[name])
            values[name] = k * running - (k - 1) * self._previous.get(name, 0.0)
            self._previous[name] = running
        self.window.append(values)
        if self.solved_at is None and len(self.window) == self.window.maxlen and self._met():
            self.solved_at = (self._epoch * self.steps + k) * self.batch_size
            if self.stop:
                self.model.stop_training = True

    def _met(self) -> bool:
        for name, (op, bound) in self.rule.bounds.items():
            mean = sum(v[name] for v in self.window) / len(self.window)
            if not (mean < bound if op == "<" else mean >= bound):
                return False
        return True

    def state(self) -> dict:
        return {"window": list(self.window), "solved_at": self.solved_at}

    def load_state(self, state: dict) -> None:
        self.window.clear()
        self.window.extend(state["window"])
        self.solved_at = state["solved_at"]


class RunLog(keras.callbacks.Callback):
    """Keeps the per-epoch history; writes metrics.json and the learning curve at each epoch end."""

    def __init__(
        self,
        out_dir: str,
        summary: dict,
        sequences_per_epoch: int,
        chance_loss,
        chance_name,
        tracker: SolveTracker | None,
    ):
        super().__init__()
        self.out_dir, self.summary = out_dir, dict(summary)
        self.sequences_per_epoch = sequences_per_epoch
        self.chance_loss, self.chance_name, self.tracker = chance_loss, chance_name, tracker
        self.history: list[dict] = []
        self.wall_s = 0.0
        self._t0 = time.perf_counter()  # reset at each epoch's start

    def on_epoch_begin(self, epoch, logs=None):
        self._t0 = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.wall_s += time.perf_counter() - self._t0
        sequences = (epoch + 1) * self.sequences_per_epoch
        if self.tracker is not None and self.tracker.solved_at is not None:
            sequences = min(sequences, max(self.tracker.solved_at, epoch * self.sequences_per_epoch))
        record = {"epoch": epoch + 1, "sequences": sequences, "wall_s": round(self.wall_s, 3)}
        record.update({k: float(v) for k, v in (logs or {}).items()})
        self.history.append(record)
        self.write("running")

    def write(self, status: str, extra: dict | None = None) -> dict:
        solved = self.tracker.solved_at if self.tracker is not None else None
        data = {
            **self.summary,
            "status": status,
            "chance_loss": self.chance_loss,
            "chance": self.chance_name,
            "solved_at_sequences": solved,
            "sequences_seen": self.history[-1]["sequences"] if self.history else 0,
            "wall_s": round(self.wall_s, 3),
            "final": self.history[-1] if self.history else {},
            **(extra or {}),
            "epochs": self.history,
        }
        write_json(os.path.join(self.out_dir, "metrics.json"), data)
        plot_learning_curve(
            os.path.join(self.out_dir, "learning_curve.png"),
            self.history,
            self.chance_loss,
            self.chance_name,
            solved,
            title=self.summary.get("title", ""),
        )
        return data

    def state(self) -> dict:
        return {"history": self.history, "wall_s": self.wall_s}

    def load_state(self, state: dict) -> None:
        self.history = list(state["history"])
        self.wall_s = state["wall_s"]


class ResumableEarlyStopping(keras.callbacks.EarlyStopping):
    """EarlyStopping whose wait and best are rebuilt from a resumed run's history."""

    best: float | None  # EarlyStopping's: None until a first value is seen

    def __init__(self, run_log: RunLog, **kwargs):
        super().__init__(**kwargs)
        self.run_log = run_log

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        if self.run_log.history and self.monitor_op is None:
            self._set_monitor_op()
        for record in self.run_log.history:
            value = record.get(self.monitor)
            if value is None:
                continue
            if self.best is None or self._is_improvement(value, self.best):
                self.best, self.best_epoch, self.wait = value, record["epoch"] - 1, 0
            else:
                self.wait += 1


_STATE_FILE = "run_state.json"


class RunBackup(keras.callbacks.BackupAndRestore):
    """BackupAndRestore, plus the state of the run's stateful callbacks, saved at the same epoch ends.

    Each epoch's state is written under its epoch number just before Keras's own backup, and the two
    latest are kept, so whichever write a kill interrupts, the state matching Keras's restored epoch
    (:func:`backup_epoch`) is on disk.
    """

    def __init__(self, backup_dir: str, stateful: dict):
        super().__init__(backup_dir, save_freq="epoch", delete_checkpoint=True)
        self.stateful = stateful

    def on_epoch_end(self, epoch, logs=None):
        os.makedirs(self.backup_dir, exist_ok=True)
        path = os.path.join(self.backup_dir, _STATE_FILE)
        states = _read(path)
        states[str(epoch + 1)] = {name: obj.state() for name, obj in self.stateful.items()}
        keep = sorted(states, key=int)[-2:]
        write_json(path, {k: states[k] for k in keep})
        super().on_epoch_end(epoch, logs)

    def restore_state(self) -> int:
        """Load the callbacks' state for the epoch Keras will resume from; return that epoch (0: fresh)."""
        epoch = backup_epoch(self.backup_dir)
        if epoch:
            saved = _read(os.path.join(self.backup_dir, _STATE_FILE))[str(epoch)]
            for name, obj in self.stateful.items():
                obj.load_state(saved[name])
        return epoch


def backup_epoch(backup_dir: str) -> int:
    """The epoch BackupAndRestore resumes from (its training_metadata.json), 0 if there is no backup."""
    path = os.path.join(backup_dir, "training_metadata.json")
    if not os.path.exists(os.path.join(backup_dir, "latest.weights.h5")) or not os.path.exists(path):
        return 0
    with open(path) as f:
        return int(json.load(f)["epoch"])


def _read(path: str) -> dict:
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return json.load(f)
