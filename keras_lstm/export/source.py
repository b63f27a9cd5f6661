"""Where the model to export comes from: a ``.keras`` file or a training run directory."""

from __future__ import annotations

import zipfile
from pathlib import Path

from keras_lstm.export.errors import ModelNotFoundError

__all__ = ["CLASSES_FILE", "class_names_of", "load_model", "not_a_keras_archive", "resolve_model_path"]

CLASSES_FILE = "classes.json"  # written by `keras-lstm train classify` into its run directory

_EXPECTED = "a .keras file, or a training run directory holding model.keras or checkpoints/*.keras"


def resolve_model_path(model: str | Path) -> Path:
    """The ``.keras`` file that MODEL names.

    A run directory gives ``RUN/model.keras``; without it, the newest ``RUN/checkpoints/*.keras``
    (by modification time, then name)."""
    path = Path(model)
    if path.is_file():
        if path.suffix != ".keras":
            raise ModelNotFoundError("model", str(model), _EXPECTED)
        return path
    if path.is_dir():
        final = path / "model.keras"
        if final.is_file():
            return final
        checkpoints = sorted(
            (p for p in (path / "checkpoints").glob("*.keras") if p.is_file()),
            key=lambda p: (p.stat().st_mtime_ns, p.name),
        )
        if checkpoints:
            return checkpoints[-1]
    raise ModelNotFoundError("model", str(model), _EXPECTED)


def not_a_keras_archive(path: Path) -> str | None:
    """Why ``path`` is not a file that ``keras.saving.save_model`` wrote (a zip archive holding
    config.json), or None; checked before Keras tries to load it."""
    if not zipfile.is_zipfile(path):
        return f"{path} is not a zip archive"
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError) as err:
        return f"{path} cannot be read as a zip archive ({err})"
    return None if "config.json" in names else f"{path} holds no config.json"


def load_model(model: str | Path):
    """Load the Keras model that MODEL names (uncompiled: export needs inference only)."""
    import keras

    import keras_lstm  # noqa: F401  (registers LSTM and LSTMCell for deserialisation)

    path = resolve_model_path(model)
    why = not_a_keras_archive(path)
    if why is not None:
        raise ModelNotFoundError("model", str(model), f"a model saved by Keras ({why})")
    return keras.saving.load_model(path, compile=False)


def class_names_of(model: str | Path) -> list[str] | None:
    """The labels of a ``train classify`` run (``RUN/classes.json``) that MODEL belongs to, else None."""
    import json

    path = resolve_model_path(model)
    run = path.parent.parent if path.parent.name == "checkpoints" else path.parent
    if not (run / CLASSES_FILE).is_file():
        return None
    with open(run / CLASSES_FILE, encoding="utf-8") as f:
        return json.load(f)
