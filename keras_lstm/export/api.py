"""``export_model``: a Keras model in, a published TF Serving version out."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import tensorflow as tf

from keras_lstm.export.errors import ExportArgumentError, UnservableGraphError
from keras_lstm.export.graphcheck import serving_blockers
from keras_lstm.export.plan import plan_export
from keras_lstm.export.publish import CONFIG_NAME, check_name, choose_version, register_model, staged_version
from keras_lstm.export.signatures import ServingModule
from keras_lstm.export.warmup import warmup_requests, write_warmup

__all__ = ["export_model"]

log = logging.getLogger("keras_lstm.export")


def export_model(
    model,
    base: str | Path,
    name: str,
    version: int | None = None,
    force: bool = False,
    xla: bool = False,
    class_names: Sequence[str] | None = None,
) -> Path:
    """Export ``model`` as ``BASE/NAME/<version>/`` and list NAME in ``BASE/models.config``.

    ``version`` defaults to the next integer; an existing version is replaced only with ``force``.
    Without ``xla`` the graph holds no XLA-marked function (checked before publishing), so stock TF
    Serving loads it on CPU or GPU; ``xla=True`` keeps the layers' XLA compilation, which needs TF
    Serving >= 2.18 started with ``--xla_cpu_compilation_enabled`` or ``--xla_gpu_compilation_enabled``.
    With ``class_names`` (one label per column of a classifier's output) the signatures also answer
    ``classes``, those labels as strings. Returns the published version directory."""
    check_name(name)
    base = Path(base)
    model_dir = base / name
    version = choose_version(model_dir, version, force)
    plan = plan_export(model, xla=xla)
    _check_class_names(model, class_names)
    module = ServingModule(plan, class_names)
    signatures = module.functions
    if plan.not_steppable:
        log.warning("exporting %s without the step and init_state signatures: %s", name, plan.not_steppable)
    with staged_version(model_dir, version, force) as tmp:
        tf.saved_model.save(module, str(tmp), signatures=signatures)
        blockers = serving_blockers(tmp)
        if blockers and not xla:
            raise UnservableGraphError(
                "the exported graph would not load on stock TF Serving:\n  " + "\n  ".join(blockers)
            )
        write_warmup(tmp, warmup_requests(plan, name, list(signatures)))
        _prove_on_session_path(tmp, name, version)
    final = model_dir / str(version)
    if register_model(base / CONFIG_NAME, name):
        log.info("added %s to %s", name, base / CONFIG_NAME)
    log.info("published %s (signatures: %s)", final, ", ".join(signatures))
    return final


def _check_class_names(model, class_names) -> None:
    if class_names is None:
        return
    width = model.outputs[0].shape[-1]
    ok = (
        not isinstance(class_names, str)
        and all(isinstance(c, str) for c in class_names)
        and len(class_names) == width
        and len(set(class_names)) == len(class_names)
    )
    if not ok:
        raise ExportArgumentError(
            "class_names",
            class_names,
            f"{width} distinct strings, one per column of the model's output (shape {tuple(model.outputs[0].shape)})",
        )


def _prove_on_session_path(staged: Path, name: str, version: int) -> None:
    """Load the staged version as TF Serving does (session loader: restore op, init op) and replay its
    warmup records through ``Session.run``, one per signature; raise UnservableGraphError if any fails,
    so such a version is never published."""
    from serving.errors import ServingError
    from serving.servable import Servable

    try:
        servable = Servable(name, version, staged)
    except Exception as err:
        raise UnservableGraphError(f"the session loader (TF Serving's path) cannot load the export: {err}") from err
    try:
        servable.warm_up()
    except ServingError as err:
        raise UnservableGraphError(f"the export fails on TF Serving's path (Session.run): {err.details}") from err
    finally:
        servable.close()
