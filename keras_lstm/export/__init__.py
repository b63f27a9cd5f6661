"""``keras-lstm export MODEL --name NAME --base models``: a model as a TF Serving SavedModel version.

MODEL is a ``.keras`` file or a training run directory (``RUN/model.keras``, else the newest
``RUN/checkpoints/*.keras``); a ``train classify`` run's ``classes.json`` becomes the ``classes`` output.
The version is written to ``BASE/NAME/<version>/`` (the next integer unless ``--version N``; an existing
one only with ``--force``), published atomically, and NAME is listed in ``BASE/models.config``.
Signatures: see :mod:`keras_lstm.export.signatures`.

Python: ``export_model(model, base, name, version=None, force=False, xla=False, class_names=None) -> Path``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from keras_lstm.argtypes import positive_int
from keras_lstm.export.errors import (
    ExportArgumentError,
    ExportError,
    ModelNotFoundError,
    UnservableGraphError,
    VersionExistsError,
)
from keras_lstm.extras import require

__all__ = [
    "ExportArgumentError",
    "ExportError",
    "ModelNotFoundError",
    "UnservableGraphError",
    "VersionExistsError",
    "configure",
    "export_model",
    "run",
]


def export_model(model, base, name, version=None, force=False, xla=False, class_names=None):
    """See :func:`keras_lstm.export.api.export_model` (imported lazily: it pulls in TensorFlow)."""
    require("tensorflow", "keras_lstm.export")
    from keras_lstm.export.api import export_model as _export_model

    return _export_model(model, base, name, version=version, force=force, xla=xla, class_names=class_names)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL", help="a .keras file or a training run directory")
    parser.add_argument("--name", required=True, help="model name: BASE/NAME/<version>/ and its models.config entry")
    parser.add_argument(
        "--base", default="models", help="directory holding models.config and one folder per model (default: models)"
    )
    parser.add_argument("--version", type=positive_int, default=None, help="version number (default: the next one)")
    parser.add_argument("--force", action="store_true", help="replace the version if it exists")
    parser.add_argument(
        "--xla",
        action="store_true",
        help="keep XLA compilation in the graph (needs TF Serving >= 2.18 with --xla_cpu_compilation_enabled "
        "or --xla_gpu_compilation_enabled)",
    )


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from keras_lstm.export.publish import check_base, check_name
    from keras_lstm.export.source import class_names_of, load_model

    try:
        check_name(args.name)
        check_base(Path(args.base), args.name)
        model = load_model(args.model)
        path = export_model(
            model,
            args.base,
            args.name,
            version=args.version,
            force=args.force,
            xla=args.xla,
            class_names=class_names_of(args.model),
        )
    except ExportError as err:
        print(f"keras-lstm export: error: {err}", file=sys.stderr)
        return 2
    print(path)
    return 0
