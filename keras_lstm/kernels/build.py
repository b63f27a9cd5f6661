"""Build the fused CPU kernel with g++, once per framework version and source.

The kernel's core (``cc/lstm.cc``) is compiled with a thin wrapper for each framework: the
TensorFlow op (``cc/tf_op.cc``, against the installed TensorFlow wheel with ``tf.sysconfig``'s
flags, so the same C++ ABI) and the XLA FFI handler for JAX (``cc/jax_ffi.cc``, against jaxlib's
FFI headers). Its GEMMs are oneDNN's ``dnnl_sgemm`` from PyPI (``onednn-cpu-gomp`` and
``onednn-devel-cpu-gomp``, pinned in pyproject.toml). Each library is built on first use and cached
under a key of the sources, the compiler, the framework's version and oneDNN's location, as torch's
``cpp_extension`` caches its builds: the op must match the framework it is loaded into, which is
only known where it runs, and a pip build would need TensorFlow's headers in an isolated build
environment. ``make install`` runs ``python -m keras_lstm.kernels.build``, so a fresh machine builds
them (about 20 s each) before the first test, and says there, once, what is missing if it cannot.

No CPU extension is required: the elementwise passes are compiled for AVX-512, AVX2 + FMA and the
x86-64 baseline, and the loader picks the best the CPU has (``target_clones``); the GEMMs are
oneDNN's, which dispatch the same way.

The cache is ``$KERAS_LSTM_CACHE``, else ``$XDG_CACHE_HOME/keras_lstm``, else ``~/.cache/keras_lstm``.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.metadata
import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = [
    "CC_DIR",
    "ONEDNN_DISTRIBUTIONS",
    "BuildError",
    "cache_dir",
    "cached_build",
    "jax_library",
    "library",
    "onednn_dirs",
]

CC_DIR = Path(__file__).resolve().with_name("cc")
CORE = [CC_DIR / "lstm.h", CC_DIR / "lstm.cc"]
# -O3 for the elementwise passes' vector code; -Wno-psabi: 32-byte vector arguments of inlined helpers
CXXFLAGS = ["-std=c++17", "-O3", "-shared", "-fPIC", "-fopenmp", "-Wno-psabi", "-fvisibility-inlines-hidden"]
ONEDNN_DISTRIBUTIONS = ("onednn-cpu-gomp", "onednn-devel-cpu-gomp")  # library, headers (oneDNN 3.2, OpenMP)


class BuildError(RuntimeError):
    """The fused CPU kernel could not be built here; the message names what is missing.

    Cause: no C++ compiler (``g++``), oneDNN's PyPI packages not installed, or the compiler failed.
    Fix: as the message says (``apt-get install g++``, ``pip install 'keras-lstm[tensorflow]'``); meanwhile the layer
    runs the XLA loop, whose results are the same.
    """


def cache_dir() -> Path:
    if os.environ.get("KERAS_LSTM_CACHE"):
        return Path(os.environ["KERAS_LSTM_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "keras_lstm"


def cached_build(
    name: str,
    sources: Sequence[Path],
    key_parts: Sequence[str],
    command: Callable[[Path], list],
    out_dir: Path | None = None,
    suffix: str = "",
) -> Path:
    """Run ``command(output_path)`` unless an output for this key exists; return the output's path.

    The key hashes the sources, ``key_parts`` and the compiler's version. Parallel processes (test
    workers) take a file lock, and the output is renamed into place, so none sees half a build."""
    compiler = shutil.which("g++")
    if compiler is None:
        raise BuildError(f"building {name} needs a C++ compiler, and `g++` is not on PATH (apt-get install g++)")
    version = subprocess.run([compiler, "--version"], capture_output=True, text=True, check=True).stdout.splitlines()[0]
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
        done = subprocess.run(command(tmp), capture_output=True, text=True, timeout=900, check=False)  # stderr below
        if done.returncode != 0:
            tmp.unlink(missing_ok=True)
            raise BuildError(f"g++ failed to build {name}:\n{done.stderr[-4000:]}")
        os.replace(tmp, out)
    return out


def onednn_dirs() -> tuple[Path, Path]:
    """(include dir, lib dir) of the pinned oneDNN PyPI packages, from their installed file lists."""
    found = {}
    for dist, wanted in zip(ONEDNN_DISTRIBUTIONS, ("libdnnl.so.3", "dnnl.hpp"), strict=True):
        try:
            files = importlib.metadata.files(dist) or []
        except importlib.metadata.PackageNotFoundError:
            raise BuildError(
                f"the fused CPU kernel needs oneDNN from PyPI, and {dist!r} is not installed "
                "(pip install 'keras-lstm[tensorflow]', which installs it on Linux x86-64)"
            ) from None
        path = next((f for f in files if f.name == wanted and "oneapi" not in str(f)), None)
        if path is None:
            raise BuildError(f"{dist!r} is installed but holds no {wanted}: reinstall it")
        found[wanted] = Path(path.locate()).resolve().parent
    return found["dnnl.hpp"], found["libdnnl.so.3"]


def _onednn_flags() -> tuple[list, list]:
    include, lib = onednn_dirs()
    return [f"-I{include}", f"-I{CC_DIR}"], [f"-L{lib}", "-ldnnl", f"-Wl,-rpath,{lib}"]


def library() -> Path:
    """The TensorFlow op's shared library for this TensorFlow, built now if there is none yet."""
    import tensorflow as tf

    includes, links = _onednn_flags()
    sources = [*CORE, CC_DIR / "tf_op.cc"]

    def command(out: Path) -> list:
        return [
            "g++",
            *CXXFLAGS,
            *(str(s) for s in sources if s.suffix == ".cc"),
            "-o",
            str(out),
            *tf.sysconfig.get_compile_flags(),
            *includes,
            *links,
            *tf.sysconfig.get_link_flags(),
            f"-Wl,-rpath,{tf.sysconfig.get_lib()}",
        ]

    key = [tf.__version__, tf.sysconfig.get_include(), *includes, *links, sys.version]
    return cached_build("fused_lstm_tf", sources, key, command, suffix=".so")


def jax_library() -> Path:
    """The XLA FFI handlers' shared library for this jaxlib, built now if there is none yet."""
    import jax

    includes, links = _onednn_flags()
    sources = [*CORE, CC_DIR / "jax_ffi.cc"]

    def command(out: Path) -> list:
        return [
            "g++",
            *CXXFLAGS,
            *(str(s) for s in sources if s.suffix == ".cc"),
            "-o",
            str(out),
            f"-I{jax.ffi.include_dir()}",
            *includes,
            *links,
        ]

    key = [jax.__version__, jax.ffi.include_dir(), *includes, *links, sys.version]
    return cached_build("fused_lstm_jax", sources, key, command, suffix=".so")


def main() -> int:
    """``python -m keras_lstm.kernels.build``: build (or find) each library whose framework is installed
    and say where, or why not."""
    from keras_lstm.quiet import import_tensorflow, quiet_environment

    quiet_environment()
    builds = []
    if importlib.util.find_spec("tensorflow") is not None:
        import_tensorflow()  # without TensorFlow's start-up lines in `make install`'s output
        builds.append(("TensorFlow op", library))
    if importlib.util.find_spec("jax") is not None:
        builds.append(("JAX (XLA FFI)", jax_library))
    for what, build in builds:
        try:
            print(f"keras_lstm fused CPU kernel, {what}: {build()}")
        except BuildError as err:
            print(
                f"keras_lstm fused CPU kernel, {what}, not built: the layer will run its loop: {err}", file=sys.stderr
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
