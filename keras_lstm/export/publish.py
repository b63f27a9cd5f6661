"""Publishing a version: names, version numbers, the atomic rename, and ``models.config``.

TF Serving polls ``BASE/NAME/`` and loads every directory whose name is an integer. A version is
built in ``BASE/NAME/.tmp-<version>-<pid>`` (not an integer, so never loaded) and renamed to
``BASE/NAME/<version>`` once complete: a server never sees half a version. Replacing a version
(``--force``) swaps the two directories in one step where the OS can (Linux ``renameat2`` with
``RENAME_EXCHANGE``), so the version never goes missing either.
"""

from __future__ import annotations

import ctypes
import errno
import os
import re
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from keras_lstm.argtypes import file_in_the_way
from keras_lstm.export.errors import ExportArgumentError, VersionExistsError

__all__ = [
    "CONFIG_NAME",
    "check_base",
    "check_name",
    "choose_version",
    "exchange_paths",
    "existing_versions",
    "read_config",
    "register_model",
    "staged_version",
]

CONFIG_NAME = "models.config"
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


def check_name(name: str) -> str:
    """A model name: one path component of letters, digits, ``_ . -``, not starting with a dot."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ExportArgumentError(
            "name",
            name,
            "a model name of letters, digits, '_', '.' and '-' that does not start with '.' "
            "and holds no path separator (it becomes the directory BASE/NAME)",
        )
    return name


def existing_versions(model_dir: Path) -> list[int]:
    """The version numbers published under ``model_dir``, ascending (temp dirs are not versions)."""
    if not model_dir.is_dir():
        return []
    return sorted(int(p.name) for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit())


def choose_version(model_dir: Path, version: int | None, force: bool) -> int:
    """``version``, or the next integer after the highest published one (1 for a new model)."""
    if version is None:
        return max(existing_versions(model_dir), default=0) + 1
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ExportArgumentError("version", version, "a positive integer")
    if (model_dir / str(version)).exists() and not force:
        raise VersionExistsError(
            "version",
            version,
            f"a version not yet in {model_dir} (pass --force to replace it, or leave "
            f"--version out to publish {max(existing_versions(model_dir), default=0) + 1})",
        )
    return version


_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def exchange_paths(a: Path, b: Path) -> bool:
    """Swap two existing paths atomically (Linux ``renameat2(..., RENAME_EXCHANGE)``).

    Returns False, having changed nothing, where the OS, the C library or the file system cannot."""
    if not sys.platform.startswith("linux"):
        return False
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)  # glibc >= 2.28
    if renameat2 is None:
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(a), None, str(b))


@contextmanager
def staged_version(model_dir: Path, version: int, force: bool = False) -> Iterator[Path]:
    """Yield a temporary directory to write the version into; on success rename it to ``model_dir/version``.

    On any failure the temporary directory is removed and nothing is published. With ``force`` an
    existing version is swapped with the new one in one step (:func:`exchange_paths`) and then
    deleted; where that is impossible it is moved aside first, so the version is absent for the
    instant between two renames."""
    model_dir.mkdir(parents=True, exist_ok=True)
    final = model_dir / str(version)
    tmp = model_dir / f".tmp-{version}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
        if final.exists():
            if not force:
                raise VersionExistsError("version", version, f"a version not yet in {model_dir}")
            if not exchange_paths(tmp, final):  # else tmp now holds the old version; removed below
                old = model_dir / f".old-{version}-{os.getpid()}"
                final.rename(old)
                tmp.rename(final)
                shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def check_base(base: Path, name: str) -> None:
    """Refuse, before anything is exported, a ``base`` where ``base/name/`` cannot be made or whose
    ``models.config`` cannot take ``name``."""
    blocker = file_in_the_way(base / name)
    if blocker is not None:
        raise ExportArgumentError("base", str(base), f"a folder to hold {name}/<version>/ ({blocker} is a file)")
    read_config(base / CONFIG_NAME)


def read_config(config_path: Path) -> model_server_config_pb2.ModelServerConfig:
    """The ModelServerConfig in ``config_path`` (empty if there is none yet); ExportArgumentError when it
    cannot be read, does not parse, or is not a model_config_list."""
    config = model_server_config_pb2.ModelServerConfig()
    if not config_path.exists():
        return config
    try:
        text_format.Parse(config_path.read_text(), config)
    except OSError as err:
        raise ExportArgumentError(
            "models.config", str(config_path), f"a readable ModelServerConfig text file ({err.strerror})"
        ) from err
    except text_format.ParseError as err:
        raise ExportArgumentError(
            "models.config", str(config_path), f"a ModelServerConfig in text format ({err})"
        ) from err
    if config.WhichOneof("config") == "custom_model_config":
        raise ExportArgumentError("models.config", str(config_path), "a model_config_list, not a custom_model_config")
    return config


def register_model(config_path: Path, name: str, base_path: str | None = None) -> bool:
    """Make sure ``config_path`` (ModelServerConfig, text format) serves ``name``; True if it changed.

    A new entry gets ``base_path`` (default ``/models/NAME``, the container path) and platform
    ``tensorflow``; an existing entry and every other entry are kept as they are. The entry is
    written into the text before the list's closing brace, so comments and layout stay, and the
    result is parsed back and compared with the intended config (else the file is rewritten through
    the protos, without its comments). The file is replaced atomically."""
    config = read_config(config_path)
    if any(entry.name == name for entry in config.model_config_list.config):
        return False
    entry = config.model_config_list.config.add()
    entry.name = name
    entry.base_path = base_path or f"/models/{name}"
    entry.model_platform = "tensorflow"
    text = _with_entry(config_path.read_text(), entry, config) if config_path.exists() else None
    config_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = config_path.with_name(f".{config_path.name}.tmp-{os.getpid()}")
    tmp.write_text(text if text is not None else text_format.MessageToString(config))
    os.replace(tmp, config_path)
    return True


def _with_entry(text: str, entry, intended) -> str | None:  # ModelConfig, ModelServerConfig
    """``text`` with ``entry`` written just before the closing brace of its model_config_list (the
    last ``}`` outside comments), or None unless that parses back to exactly ``intended``."""
    lines = text.rstrip().split("\n")
    while lines and (not lines[-1].strip() or lines[-1].lstrip().startswith("#")):
        lines.pop()  # trailing comments after the list
    if not lines or not lines[-1].rstrip().endswith("}"):
        return None
    body = text_format.MessageToString(entry)
    block = "  config {\n" + "".join(f"    {line}\n" for line in body.splitlines()) + "  }\n"
    last = text.rindex(lines[-1]) + len(lines[-1].rstrip()) - 1  # the offset of that brace
    candidate = text[:last] + ("" if text[:last].endswith("\n") else "\n") + block + text[last:]
    parsed = model_server_config_pb2.ModelServerConfig()
    try:
        text_format.Parse(candidate, parsed)
    except text_format.ParseError:
        return None
    return candidate if parsed == intended else None
