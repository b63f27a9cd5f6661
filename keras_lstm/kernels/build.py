"""Build the fused CPU kernel's TensorFlow op with g++, once per TensorFlow version and source.

The op (``onednn_lstm.cc``) is compiled against the installed TensorFlow wheel (``tf.sysconfig``'s
flags, so the same C++ ABI) and oneDNN 3.2 from PyPI (``onednn-cpu-gomp`` and
``onednn-devel-cpu-gomp``, pinned in pyproject.toml), on first use, and cached under a key of the
source, the compiler, TensorFlow's version and oneDNN's location, as torch's ``cpp_extension``
caches its builds: the op must match the TensorFlow it is loaded into, which is only known where it
runs, and a pip build would need TensorFlow's headers in an isolated build environment. ``make
install`` runs ``python -m keras_lstm.kernels.build``, so a fresh machine builds it (about 15 s)
before the first test, and says there, once, what is missing if it cannot.

The cache is ``$KERAS_LSTM_CACHE``, else ``$XDG_CACHE_HOME/keras_lstm``, else ``~/.cache/keras_lstm``.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.metadata
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable, Sequence

__all__ = ["BuildError", "SOURCE", "ONEDNN_DISTRIBUTIONS", "cache_dir", "cached_build", "onednn_dirs", "library"]

SOURCE = Path(__file__).resolve().with_name("onednn_lstm.cc")
ONEDNN_DISTRIBUTIONS = ("onednn-cpu-gomp", "onednn-devel-cpu-gomp")  # library, headers (oneDNN 3.2, OpenMP)


class BuildError(RuntimeError):
    """The fused CPU kernel could not be built here; the message names what is missing.

    Cause: no C++ compiler (``g++``), oneDNN's PyPI packages not installed, or the compiler failed.
    Fix: as the message says (``apt-get install g++``, ``pip install -e .``); meanwhile the layer
    runs the XLA loop, whose results are the same.
    """


def cache_dir() -> Path:
    if os.environ.get("KERAS_LSTM_CACHE"):
        return Path(os.environ["KERAS_LSTM_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "keras_lstm"


def cached_build(name: str, sources: Sequence[Path], key_parts: Sequence[str], command: Callable[[Path], list],
                 out_dir: Path | None = None, suffix: str = "") -> Path:
    """Run ``command(output_path)`` unless an output for this key exists; return the output's path.

    The key hashes the sources, ``key_parts`` and the compiler's version. Parallel processes (test
    workers) take a file lock, and the output is renamed into place, so none sees half a build."""
    compiler = shutil.which("g++")
    if compiler is None:
        raise BuildError(f"building {name} needs a C++ compiler, and `g++` is not on PATH (apt-get install g++)")
    version = subprocess.run([compiler, "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    digest = hashlib.sha256()
    for part in [*(Path(s).read_bytes() for s in sources), *(p.encode() for p in (*key_parts, version))]:
        digest.update(part)
    out_dir = out_dir or cache_dir()
    out = out_dir / f"{name}-{digest.hexdigest()[:16]}{suffix}"
    if out.exists():
        return out
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / f".{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if out.exists():  # built by another process while this one waited
            return out
        tmp = out.with_name(f".tmp-{os.getpid()}-{out.name}")
        done = subprocess.run(command(tmp), capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            tmp.unlink(missing_ok=True)
            raise BuildError(f"g++ failed to build {name}:\n{done.stderr[-4000:]}")
        os.replace(tmp, out)
    return out


def onednn_dirs() -> tuple[Path, Path]:
    """(include dir, lib dir) of the pinned oneDNN PyPI packages, from their installed file lists."""
    found = {}
    for dist, wanted in zip(ONEDNN_DISTRIBUTIONS, ("libdnnl.so.3", "dnnl.hpp")):
        try:
            files = importlib.metadata.files(dist) or []
        except importlib.metadata.PackageNotFoundError:
            raise BuildError(
                f"the fused CPU kernel needs oneDNN from PyPI, and {dist!r} is not installed "
                f"(pip install {' '.join(ONEDNN_DISTRIBUTIONS)}, or `make install`)"
            ) from None
        path = next((f for f in files if f.name == wanted and "oneapi" not in str(f)), None)
        if path is None:
            raise BuildError(f"{dist!r} is installed but holds no {wanted}: reinstall it")
        found[wanted] = Path(path.locate()).resolve().parent
    return found["dnnl.hpp"], found["libdnnl.so.3"]


def library() -> Path:
    """The op's shared library for this TensorFlow, built now if there is none yet."""
    import tensorflow as tf

    include, lib = onednn_dirs()
    tf_include, tf_lib = tf.sysconfig.get_include(), tf.sysconfig.get_lib()

    def command(out: Path) -> list:
        return [
            "g++", "-std=c++17", "-O2", "-shared", "-fPIC", "-fopenmp", "-w", str(SOURCE), "-o", str(out),
            *tf.sysconfig.get_compile_flags(), f"-I{include}", f"-L{lib}", "-ldnnl", f"-Wl,-rpath,{lib}",
            *tf.sysconfig.get_link_flags(), f"-Wl,-rpath,{tf_lib}",
        ]

    key = [tf.__version__, tf_include, str(include), str(lib), sys.version]
    return cached_build("onednn_lstm", [SOURCE], key, command, suffix=".so")


def main() -> int:
    """``python -m keras_lstm.kernels.build``: build (or find) the op and say where, or why not."""
    from keras_lstm.quiet import import_tensorflow, quiet_environment

    quiet_environment()
    import_tensorflow()  # without TensorFlow's start-up lines in `make install`'s output
    try:
        print(f"keras_lstm fused CPU kernel: {library()}")
    except BuildError as err:
        print(f"keras_lstm fused CPU kernel not built, the layer will run its XLA loop: {err}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
