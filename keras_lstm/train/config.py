"""``TrainConfig``: the one typed source of every training option.

The ``keras-lstm train`` flags are derived from its fields (:func:`add_arguments`), and the run's
``config.json`` is ``dataclasses.asdict`` of its resolved form, so a new option is added here, once.
Fields left ``None`` take the task's default in :meth:`TrainConfig.resolved`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import random
from dataclasses import dataclass, field, fields

from keras_lstm.train.errors import TrainArgumentError

__all__ = ["TASKS", "TASK_DEFAULTS", "TrainConfig", "add_arguments", "from_args"]

TASKS = ("adding", "copy", "charlm", "co2", "series", "classify")
CSV_TASKS = ("series", "classify")
MIN_LENGTH = 10

# Task defaults for the fields left None. init: chosen by the long-memory benchmark (docs/training.md).
TASK_DEFAULTS: dict[str, dict] = {
    "adding": dict(
        length=100,
        units=64,
        init="chrono",
        learning_rate=1e-2,
        steps_per_epoch=100,
        epochs=50,
        validation_size=512,
        early_stopping=0,
    ),
    "copy": dict(
        length=100,
        units=64,
        init="chrono",
        learning_rate=1e-3,
        steps_per_epoch=100,
        epochs=50,
        validation_size=256,
        early_stopping=0,
    ),
    "charlm": dict(
        length=100,
        units=128,
        init="keras",
        learning_rate=2e-3,
        steps_per_epoch=200,
        epochs=10,
        validation_size=128,
        early_stopping=3,
    ),
    "co2": dict(
        length=48,
        units=32,
        init="keras",
        learning_rate=1e-3,
        steps_per_epoch=0,
        epochs=200,
        validation_size=0,
        early_stopping=30,
    ),
    "series": dict(
        length=24,
        units=32,
        init="keras",
        learning_rate=3e-3,
        steps_per_epoch=0,
        epochs=100,
        validation_size=0,
        early_stopping=15,
        horizon=1,
        missing="refuse",
    ),
    "classify": dict(
        units=32,
        init="keras",
        learning_rate=3e-3,
        steps_per_epoch=0,
        epochs=50,
        validation_size=0,
        early_stopping=10,
        missing="refuse",
    ),
}


def _opt(help_text: str, **extra) -> dict:
    return {"help": help_text, **extra}


@dataclass(frozen=True)
class TrainConfig:
    task: str = field(metadata=_opt("the task", choices=TASKS, positional=True))
    length: int | None = field(
        default=None,
        metadata=_opt(
            "T: the adding/copy span, the charlm window, the co2 input window in months, the series window",
            flags=("-T", "--length", "--window"),
        ),
    )
    units: int | None = field(default=None, metadata=_opt("recurrent units"))
    baseline: str | None = field(
        default=None, metadata=_opt("train this Keras layer instead of keras_lstm.LSTM", choices=("simple_rnn", "gru"))
    )
    init: str | None = field(
        default=None,
        metadata=_opt(
            "LSTM gate-bias initialisation: chrono (Tallec & Ollivier 2018) or keras (zeros, forget bias 1)",
            choices=("chrono", "keras"),
        ),
    )
    max_timescale: float | None = field(default=None, metadata=_opt("chrono's T_max (default: the task's T)"))
    batch_size: int = field(default=32, metadata=_opt("global batch size"))
    learning_rate: float | None = field(default=None, metadata=_opt("Adam learning rate"))
    clipnorm: float | None = field(default=None, metadata=_opt("clip each gradient to this norm"))
    steps_per_epoch: int | None = field(default=None, metadata=_opt("batches per epoch (co2: 0 = one pass)"))
    epochs: int | None = field(default=None, metadata=_opt("epochs"))
    max_sequences: int | None = field(
        default=None, metadata=_opt("training budget in sequences; sets --epochs to fit it")
    )
    validation_size: int | None = field(default=None, metadata=_opt("validation sequences (charlm: windows)"))
    early_stopping: int | None = field(default=None, metadata=_opt("patience on val_loss in epochs; 0 = off"))
    stop_when_solved: bool = field(default=True, metadata=_opt("stop once adding/copy meets its solved criterion"))
    seed: int | None = field(default=None, metadata=_opt("seed for weights and data (default: drawn, saved)"))
    mixed_precision: bool = field(default=False, metadata=_opt("mixed_float16 compute"))
    jit: bool = field(default=True, metadata=_opt("XLA-compile the LSTM's time loop (jit_compile)"))
    peephole: bool = field(default=False, metadata=_opt("LSTM variant: peephole connections"))
    coupled_gates: bool = field(default=False, metadata=_opt("LSTM variant: input gate = 1 - forget gate"))
    projection_units: int | None = field(default=None, metadata=_opt("LSTM variant: project h to this width"))
    layer_norm: bool = field(default=False, metadata=_opt("LSTM variant: layer-normalised gates"))
    cell_clip: float | None = field(default=None, metadata=_opt("LSTM variant: clip the cell state"))
    projection_clip: float | None = field(default=None, metadata=_opt("LSTM variant: clip the projection"))
    distribute: str | None = field(
        default=None,
        metadata=_opt(
            "tf.distribute strategy: mirrored (this machine's devices) or multi-worker (reads TF_CONFIG)",
            choices=("mirrored", "multi-worker"),
        ),
    )
    text: str | None = field(default=None, metadata=_opt("charlm: a UTF-8 text file (default: the stdlib's .py)"))
    max_chars: int = field(default=1_000_000, metadata=_opt("charlm: read at most this many characters"))
    csv: str | None = field(default=None, metadata=_opt("series/classify: the CSV file (a header row first)"))
    target: str | None = field(default=None, metadata=_opt("series: the column to forecast"))
    features: str | None = field(
        default=None,
        metadata=_opt(
            "comma-separated input columns; series: besides the target (default none), classify: default every "
            "column but --id-col, --label-col and --time-col"
        ),
    )
    time_col: str | None = field(
        default=None,
        metadata=_opt(
            "series/classify: a time column (numbers or ISO 8601 dates): rows are sorted by it, duplicates refused, "
            "gaps reported"
        ),
    )
    horizon: int | None = field(default=None, metadata=_opt("series: K, the steps ahead to forecast (default 1)"))
    season: int | None = field(
        default=None, metadata=_opt("series: the season length S in rows, for the seasonal naive baseline and MASE")
    )
    missing: str | None = field(
        default=None,
        metadata=_opt(
            "series/classify: missing numeric cells are refused (default), or filled with the previous value (ffill) "
            "or a straight line between neighbours (interpolate)",
            choices=("refuse", "ffill", "interpolate"),
        ),
    )
    id_col: str | None = field(default=None, metadata=_opt("classify: the column naming each row's sequence"))
    label_col: str | None = field(default=None, metadata=_opt("classify: the column holding the sequence's label"))
    csv_sha256: str | None = field(
        default=None, metadata=_opt("the CSV's SHA-256 (recorded by the run; a --resume refuses a changed file)")
    )
    run_dir: str | None = field(default=None, metadata=_opt("run directory (default: runs/TASK-TIMESTAMP)"))
    verbose: int = field(
        default=1, metadata=_opt("Keras verbosity: 0 silent, 1 progress bar, 2 one line/epoch", choices=(0, 1, 2))
    )

    def __post_init__(self):
        _check(self)

    # Derived --------------------------------------------------------------------------------------
    def resolved(self) -> TrainConfig:
        """Every None field that has a task default filled in, and a seed drawn if none was given."""
        changes = {k: v for k, v in TASK_DEFAULTS[self.task].items() if getattr(self, k) is None}
        if self.baseline is not None:
            changes["init"] = "keras"
        if self.csv is not None and self.csv_sha256 is None:
            from keras_lstm.train.csvfile import sha256_of

            changes["csv_sha256"] = sha256_of(self.csv)
        if self.seed is None:
            changes["seed"] = random.SystemRandom().randrange(2**31)
        out = dataclasses.replace(self, **changes)
        if out.max_timescale is None and out.init == "chrono":
            if out.length is None:
                raise TrainArgumentError("--max-timescale", None, f"given with --init chrono for {out.task} (no -T)")
            out = dataclasses.replace(out, max_timescale=float(out.length))
        if out.max_sequences is not None and out.steps_per_epoch:
            per_epoch = out.steps_per_epoch * out.batch_size
            out = dataclasses.replace(out, epochs=max(1, -(-out.max_sequences // per_epoch)))
        return out

    @property
    def layer(self) -> str:
        return self.baseline or "lstm"

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> TrainConfig:
        data = json.loads(text)
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def _positive(cfg, name, kind=int, allow_zero=False):
    v = getattr(cfg, name)
    if v is None:
        return
    ok = not isinstance(v, bool) and isinstance(v, (int, float) if kind is float else int) and math.isfinite(v)
    if not ok or v < 0 or (v == 0 and not allow_zero):
        what = "an integer" if kind is int else "a finite number"
        raise TrainArgumentError(_flag(name), v, f"{what} {'>= 0' if allow_zero else '> 0'}")


def _check(cfg: TrainConfig) -> None:
    if cfg.task not in TASKS:
        raise TrainArgumentError("task", cfg.task, f"one of {', '.join(TASKS)}")
    shortest = 2 if cfg.task == "series" else MIN_LENGTH
    if cfg.length is not None and (
        isinstance(cfg.length, bool) or not isinstance(cfg.length, int) or cfg.length < shortest
    ):
        raise TrainArgumentError("--length", cfg.length, f"an integer T >= {shortest}")
    for name in (
        "units",
        "batch_size",
        "epochs",
        "max_sequences",
        "projection_units",
        "max_chars",
        "horizon",
        "season",
    ):
        _positive(cfg, name)
    for name in ("steps_per_epoch", "validation_size", "early_stopping", "seed"):
        _positive(cfg, name, allow_zero=True)
    for name in ("learning_rate", "clipnorm", "cell_clip", "projection_clip"):
        _positive(cfg, name, kind=float)
    if cfg.max_timescale is not None:
        _positive(cfg, "max_timescale", kind=float)
        if cfg.max_timescale < 2:
            raise TrainArgumentError("--max-timescale", cfg.max_timescale, "a finite number >= 2")
    if cfg.run_dir is not None and os.path.exists(cfg.run_dir) and not os.path.isdir(cfg.run_dir):
        raise TrainArgumentError("--run-dir", cfg.run_dir, "a new or empty directory (this path is a file)")
    for name, choices in (
        ("baseline", ("simple_rnn", "gru")),
        ("init", ("chrono", "keras")),
        ("distribute", ("mirrored", "multi-worker")),
    ):
        v = getattr(cfg, name)
        if v is not None and v not in choices:
            raise TrainArgumentError(_flag(name), v, f"one of {', '.join(choices)}")
    if cfg.baseline is not None:
        variants = [f for f in _VARIANTS if getattr(cfg, f) not in (None, False)]
        if variants:
            raise TrainArgumentError(
                _flag(variants[0]),
                getattr(cfg, variants[0]),
                f"unset with --baseline {cfg.baseline} (variant flags apply to the LSTM only)",
            )
        if cfg.init == "chrono" or cfg.max_timescale is not None:
            raise TrainArgumentError(
                "--init",
                cfg.init or "chrono",
                f"keras or unset with --baseline {cfg.baseline} (chrono is an LSTM gate init)",
            )
    if cfg.init == "keras" and cfg.max_timescale is not None:
        raise TrainArgumentError("--max-timescale", cfg.max_timescale, "unset unless --init chrono")
    if cfg.text is not None:
        if cfg.task != "charlm":
            raise TrainArgumentError("--text", cfg.text, "unset unless the task is charlm")
        if not os.path.isfile(cfg.text):
            raise TrainArgumentError("--text", cfg.text, "the path of an existing text file")
    _check_csv_task(cfg)
    if cfg.projection_clip is not None and cfg.projection_units is None:
        raise TrainArgumentError("--projection-clip", cfg.projection_clip, "unset unless --projection-units is set")
    if cfg.distribute == "multi-worker" and not os.environ.get("TF_CONFIG"):
        raise TrainArgumentError(
            "--distribute", cfg.distribute, "used with the TF_CONFIG environment variable describing the cluster"
        )


_CSV_FLAGS = {
    "series": ("csv", "target", "features", "time_col", "horizon", "season", "missing", "csv_sha256"),
    "classify": ("csv", "id_col", "label_col", "features", "time_col", "missing", "csv_sha256"),
}
_REQUIRED = {"series": ("csv", "target"), "classify": ("csv", "id_col", "label_col")}


def _check_csv_task(cfg: TrainConfig) -> None:
    """The CSV flags: required by series and classify, refused by the other tasks."""
    allowed = _CSV_FLAGS.get(cfg.task, ())
    for name in sorted({n for names in _CSV_FLAGS.values() for n in names}):
        value = getattr(cfg, name)
        if value is not None and name not in allowed:
            raise TrainArgumentError(
                _flag(name),
                value,
                f"unset unless the task is {' or '.join(t for t, names in _CSV_FLAGS.items() if name in names)}",
            )
    for name in _REQUIRED.get(cfg.task, ()):
        if getattr(cfg, name) is None:
            raise TrainArgumentError(_flag(name), None, f"given for the {cfg.task} task")
    if cfg.csv is not None and not os.path.isfile(cfg.csv):
        raise TrainArgumentError("--csv", cfg.csv, "the path of an existing CSV file")
    if cfg.missing is not None and cfg.missing not in ("refuse", "ffill", "interpolate"):
        raise TrainArgumentError("--missing", cfg.missing, "one of refuse, ffill, interpolate")
    if cfg.task == "classify" and cfg.length is not None:
        raise TrainArgumentError("--length", cfg.length, "unset for classify (each sequence is read whole)")


_VARIANTS = ("peephole", "coupled_gates", "projection_units", "layer_norm", "cell_clip", "projection_clip")


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


# argparse ------------------------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per TrainConfig field; defaults stay None so that task defaults apply later."""
    for f in fields(TrainConfig):
        meta = dict(f.metadata)
        help_text = meta.pop("help")
        choices = meta.pop("choices", None)
        if meta.pop("positional", False):
            parser.add_argument(f.name, nargs="?", choices=choices, help=help_text)
            continue
        flags = meta.pop("flags", (_flag(f.name),))
        kw = dict(dest=f.name, help=help_text, default=argparse.SUPPRESS)
        if f.type in ("bool", bool):
            kw["action"] = argparse.BooleanOptionalAction
        else:
            kw["type"] = _scalar_type(f)
            if choices is not None:
                kw["choices"] = choices
            kw["metavar"] = f.name.upper() if choices is None else None
        parser.add_argument(*flags, **kw)


def _scalar_type(f):
    text = str(f.type)
    if "float" in text:
        return float
    if "int" in text:
        return int
    return str


def from_args(args: argparse.Namespace) -> TrainConfig:
    """The TrainConfig of the flags given (unset flags keep the field defaults)."""
    given = {f.name: getattr(args, f.name) for f in fields(TrainConfig) if hasattr(args, f.name)}
    if given.get("task") is None:
        raise TrainArgumentError("task", None, f"one of {', '.join(TASKS)} (or --resume RUN)")
    return TrainConfig(**given)
