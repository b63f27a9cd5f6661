"""``train(config)``: one training run, from a resolved TrainConfig to a run directory.

Run directory layout::

    RUN/config.json          the resolved TrainConfig (what --resume reads)
    RUN/metrics.json         per-epoch history, sequences to solve, wall time, chance level, task results
    RUN/metrics.csv          the same history (keras.callbacks.CSVLogger)
    RUN/learning_curve.png   loss and val_loss against training sequences
    RUN/checkpoints/         epoch-NNN.keras, one per epoch (keras.callbacks.ModelCheckpoint)
    RUN/tensorboard/         TensorBoard logs
    RUN/backup/              keras.callbacks.BackupAndRestore state while the run is unfinished
    RUN/model.keras          the final model
    RUN/vocab.json           charlm: the characters, in id order
    RUN/forecast.png         co2, series: forecast against the truth (series: and the baselines)
    RUN/classes.json         classify: the label strings, in class-index order
    RUN/confusion.png        classify: the test part's confusion matrix
    RUN/workers/NAME/        multi-worker: the same files of each non-chief worker
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
from dataclasses import dataclass

import keras
import tensorflow as tf

from keras_lstm.train.callbacks import ResumableEarlyStopping, RunBackup, RunLog, SolveTracker
from keras_lstm.train.config import TrainConfig
from keras_lstm.train.errors import TrainArgumentError, required
from keras_lstm.train.problems import make_task

__all__ = ["CONFIG_FILE", "MODEL_FILE", "RunResult", "resume", "train"]

CONFIG_FILE = "config.json"
MODEL_FILE = "model.keras"


@dataclass(frozen=True)
class RunResult:
    run_dir: str
    metrics: dict


def resume(run_dir: str, verbose: int | None = None) -> RunResult:
    """Continue the run in ``run_dir`` from its last completed epoch (see :func:`train`)."""
    path = os.path.join(run_dir, CONFIG_FILE)
    if not os.path.isfile(path):
        raise TrainArgumentError("--resume", run_dir, f"a run directory holding {CONFIG_FILE}")
    with open(path, encoding="utf-8") as f:
        cfg = TrainConfig.from_json(f.read())
    metrics_path = os.path.join(run_dir, "metrics.json")
    if os.path.isfile(metrics_path):
        with open(metrics_path, encoding="utf-8") as f:
            metrics = json.load(f)
        if metrics.get("status") == "finished":  # nothing left to train
            return RunResult(run_dir, metrics)
    if verbose is not None:
        cfg = _replace(cfg, verbose=verbose)
    return train(cfg, run_dir=run_dir, resume=True)


def train(cfg: TrainConfig, run_dir: str | None = None, resume: bool = False) -> RunResult:
    """Train ``cfg``'s task in ``run_dir`` (default: cfg.run_dir, else runs/TASK-TIMESTAMP).

    Every argument is checked before training starts. With ``resume``, the run continues from its
    last completed epoch (keras.callbacks.BackupAndRestore) on exactly the batches it would have seen.
    """
    if not resume:
        cfg = cfg.resolved()
    if cfg.distribute == "multi-worker" and not resume and cfg.seed is None:
        raise TrainArgumentError("--seed", None, "set with --distribute multi-worker (all workers draw the same data)")
    run_dir = run_dir or cfg.run_dir or os.path.join("runs", f"{cfg.task}-{datetime.datetime.now():%Y%m%d-%H%M%S}")
    cfg = _replace(cfg, run_dir=run_dir)
    strategy = _strategy(cfg)
    replicas = strategy.num_replicas_in_sync
    if cfg.batch_size % replicas:
        raise TrainArgumentError("--batch-size", cfg.batch_size, f"a multiple of the {replicas} replicas")
    chief, out_dir = _output_dir(strategy, run_dir)
    if chief and not resume and os.path.isdir(run_dir) and set(os.listdir(run_dir)) - {"workers"}:
        raise TrainArgumentError("--run-dir", run_dir, "a new or empty directory (continue a run with --resume)")
    task = make_task(cfg)  # loads the data; may still reject an argument (a text too short)

    os.makedirs(out_dir, exist_ok=True)
    if chief:
        with open(os.path.join(run_dir, CONFIG_FILE), "w", encoding="utf-8") as f:
            f.write(cfg.to_json())
    task.save_assets(out_dir)

    with _precision(cfg.mixed_precision):
        keras.utils.set_random_seed(cfg.seed)
        with strategy.scope():
            model = task.build_model()
            loss, metrics = task.loss_and_metrics()
            optimizer = keras.optimizers.Adam(cfg.learning_rate, clipnorm=cfg.clipnorm)
            model.compile(optimizer=optimizer, loss=loss, metrics=metrics, jit_compile=False)
            if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
                _patch_for_multi_worker(model)
        steps, epochs = task.steps_per_epoch, required(cfg.epochs, "--epochs")
        callbacks, run_log, backup = _callbacks(cfg, task, out_dir, steps, replicas)
        start_epoch = backup.restore_state() if resume else 0
        _rewrite_csv(os.path.join(out_dir, "metrics.csv"), run_log.history)
        if start_epoch < epochs and not _stopped(run_log):
            model.fit(
                _dataset(task, start_epoch * steps, epochs * steps),
                epochs=epochs,
                initial_epoch=start_epoch,
                steps_per_epoch=steps,
                validation_data=task.validation_data() if _has_validation(cfg) else None,
                callbacks=callbacks,
                verbose=cfg.verbose,
                shuffle=False,
            )
        # The final model for inference and export: the same layers, uncompiled, so that loading it
        # needs only keras_lstm (checkpoints keep the compiled model, for inspection).
        keras.Model(model.input, model.output, name=model.name).save(os.path.join(out_dir, MODEL_FILE))
        extra = task.finish(model, out_dir)
    metrics = run_log.write("finished", extra)
    return RunResult(run_dir, metrics)


# Pieces ------------------------------------------------------------------------------------------------
def _replace(cfg, **changes):
    import dataclasses

    return dataclasses.replace(cfg, **changes)


def _strategy(cfg: TrainConfig) -> tf.distribute.Strategy:
    if cfg.distribute is not None and keras.config.backend() != "tensorflow":
        raise TrainArgumentError(
            "--distribute",
            cfg.distribute,
            "left out on Keras's "
            f"{keras.config.backend()!r} backend: tf.distribute strategies need the TensorFlow "
            "backend (--backend tensorflow)",
        )
    if cfg.distribute == "multi-worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if cfg.distribute == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
        return tf.distribute.MirroredStrategy(devices=devices)
    return tf.distribute.get_strategy()


def _patch_for_multi_worker(model: keras.Model) -> None:
    """Let ``fit`` run under MultiWorkerMirroredStrategy, which Keras 3.15's TF trainer breaks twice
    (keras-team/keras#20585, open). Both fixes are instance-level and leave the maths untouched.

    1. Before training, Keras builds the metrics from the first batch merged across replicas with
       ``strategy.reduce``, which MultiWorkerMirroredStrategy cannot do eagerly ("Attempt to convert
       a value (PerReplica...)"). Build from this worker's own first batch instead.
    2. Keras merges each step's logs with ``strategy.reduce("MEAN", v, axis=0)``, which fails on
       scalars under multi-worker. ``train_step``/``test_step`` (the documented override points)
       return each log as a 1-element vector, which that reduction turns back into the scalar.
    """
    import types

    def build_from_local_batch(self, iterator=None, data_batch=None):
        strategy = self.distribute_strategy
        if iterator is not None:
            for _, _, it in iterator:
                data_batch = tf.nest.map_structure(lambda v: strategy.experimental_local_results(v)[0], next(it))
                break
        with strategy.scope():
            self._symbolic_build(data_batch=data_batch)

    def as_vectors(step):
        def wrapped(self, data):
            return {k: tf.reshape(v, [1]) for k, v in step(data).items()}

        return wrapped

    model._maybe_symbolic_build = types.MethodType(build_from_local_batch, model)
    model.train_step = types.MethodType(as_vectors(model.train_step), model)
    model.test_step = types.MethodType(as_vectors(model.test_step), model)


def _output_dir(strategy, run_dir: str) -> tuple[bool, str]:
    """(is chief, where this worker writes): the chief writes RUN, other workers RUN/workers/TYPE-ID."""
    resolver = getattr(strategy, "cluster_resolver", None)
    task_type = getattr(resolver, "task_type", None)
    task_id = getattr(resolver, "task_id", 0) or 0
    if resolver is None or task_type is None or task_type == "chief":
        return True, run_dir
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    if task_type == "worker" and task_id == 0 and not has_chief:
        return True, run_dir
    return False, os.path.join(run_dir, "workers", f"{task_type}-{task_id}")


@contextlib.contextmanager
def _precision(mixed: bool):
    previous = keras.mixed_precision.dtype_policy()
    if mixed:
        keras.mixed_precision.set_dtype_policy("mixed_float16")
    try:
        yield
    finally:
        keras.mixed_precision.set_dtype_policy(previous)


def _has_validation(cfg: TrainConfig) -> bool:
    return cfg.task in ("co2", "series", "classify") or bool(cfg.validation_size)


def _stopped(run_log: RunLog) -> bool:
    """A resumed run whose solve criterion was already met has nothing left to train."""
    t = run_log.tracker
    return t is not None and t.stop and t.solved_at is not None


def _dataset(task, first: int, last: int) -> tf.data.Dataset:
    """Batches ``first .. last-1`` of the task, each a pure function of its index."""
    x, y = task.train_batch(0)
    x_shape = (None, None, *x.shape[2:]) if task.time_varies else (None, *x.shape[1:])  # classify pads per batch
    signature = (tf.TensorSpec(x_shape, x.dtype), tf.TensorSpec((None, *y.shape[1:]), y.dtype))
    ds = tf.data.Dataset.from_generator(
        lambda: (task.train_batch(i) for i in range(first, last)), output_signature=signature
    )
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return ds.with_options(options).prefetch(2)


def _callbacks(cfg: TrainConfig, task, out_dir: str, steps: int, replicas: int):
    sequences_per_epoch = steps * cfg.batch_size
    tracker = None
    if task.solve_rule is not None:
        tracker = SolveTracker(task.solve_rule, cfg.batch_size, steps, stop=cfg.stop_when_solved)
    title = (
        f"{cfg.task}"
        + (f" T={cfg.length}" if cfg.length else "")
        + f": {cfg.layer}"
        + (f" ({cfg.init} init)" if cfg.layer == "lstm" else "")
    )
    summary = {
        "task": cfg.task,
        "T": cfg.length,
        "layer": cfg.layer,
        "init": cfg.init,
        "units": cfg.units,
        "batch_size": cfg.batch_size,
        "seed": cfg.seed,
        "distribute": cfg.distribute,
        "replicas": replicas,
        "title": title,
        "solve_rule": task.solve_rule.description if task.solve_rule else None,
    }
    run_log = RunLog(out_dir, summary, sequences_per_epoch, task.chance_loss, task.chance_name, tracker)
    stateful = {"run_log": run_log, **({"tracker": tracker} if tracker else {})}
    backup = RunBackup(os.path.join(out_dir, "backup"), stateful)
    os.makedirs(os.path.join(out_dir, "checkpoints"), exist_ok=True)
    callbacks = [
        *([tracker] if tracker else []),
        keras.callbacks.ModelCheckpoint(os.path.join(out_dir, "checkpoints", "epoch-{epoch:03d}.keras")),
        keras.callbacks.CSVLogger(os.path.join(out_dir, "metrics.csv"), append=True),
        keras.callbacks.TensorBoard(os.path.join(out_dir, "tensorboard"), write_graph=False),
        run_log,
    ]
    if cfg.early_stopping and _has_validation(cfg):
        callbacks.append(ResumableEarlyStopping(run_log, monitor="val_loss", mode="min", patience=cfg.early_stopping))
    callbacks.append(backup)  # last: saves the state the callbacks above reached this epoch
    return callbacks, run_log, backup


def _rewrite_csv(path: str, history: list[dict]) -> None:
    """Leave metrics.csv holding exactly the restored epochs (CSVLogger then appends)."""
    if os.path.exists(path):
        os.remove(path)
    if not history:
        return
    import csv

    keys = ["epoch", *sorted(k for k in history[0] if k not in ("epoch", "sequences", "wall_s"))]
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=keys, extrasaction="ignore")
        writer.writeheader()
        for r in history:
            writer.writerow({**r, "epoch": r["epoch"] - 1})
