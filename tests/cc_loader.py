"""TF Serving's own loading path, from C++: ``tests/cc/run_saved_model.cc`` built against the TensorFlow
wheel (``libtensorflow_cc.so.2`` and ``tensorflow/include``) calls ``tensorflow::LoadSavedModel`` and
``Session::Run`` on the SignatureDef's tensor names, as ``tensorflow_model_server`` does.

``run_signatures(export_dir, [(signature, inputs), ...])`` runs the jobs in one process and returns each
one's outputs as NumPy arrays, or raises ``CcRunError`` with TensorFlow's status. As TF Serving, it
runs no XLA-compiled function unless ``xla_cpu_compilation_enabled`` (the server's flag) is given. The binary is built
once per TensorFlow version and source (about 20 s with g++) and cached under ``build/``, the way the
layer's fused kernel is (``keras_lstm.kernels.build.cached_build``).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2

from keras_lstm.kernels.build import BuildError, cached_build

__all__ = ["CcRunError", "binary", "run_signatures"]

SOURCE = Path(__file__).resolve().parent / "cc" / "run_saved_model.cc"
BUILD = Path(__file__).resolve().parents[1] / "build" / "cc"


class CcRunError(RuntimeError):
    """The C++ loader could not load the export, or a signature failed in Session::Run."""


def binary() -> Path:
    """The built runner (built now if this TensorFlow and source have none yet)."""
    tf_dir = Path(tf.__file__).resolve().parent

    def command(out: Path) -> list:
        return [
            "g++",
            "-std=c++17",
            "-O1",
            "-w",
            "-DEIGEN_MAX_ALIGN_BYTES=64",
            f"-I{tf_dir / 'include'}",
            str(SOURCE),
            "-o",
            str(out),
            f"-L{tf_dir}",
            "-Wl,--no-as-needed",
            "-l:libtensorflow_cc.so.2",
            "-l:libtensorflow_framework.so.2",
            f"-Wl,-rpath,{tf_dir}",
        ]

    try:
        return cached_build("run_saved_model", [SOURCE], [tf.__version__, str(tf_dir)], command, out_dir=BUILD)
    except BuildError as err:
        raise CcRunError(str(err)) from err


def run_signatures(
    export_dir: str | Path,
    jobs: Sequence[tuple[str, Mapping[str, np.ndarray]]],
    xla_cpu_compilation_enabled: bool = False,
) -> list[dict]:
    """Load ``export_dir`` once in C++ and run each (signature, inputs) job; outputs by alias."""
    with tempfile.TemporaryDirectory() as work:
        dirs = []
        for k, (signature, inputs) in enumerate(jobs):
            job = Path(work) / f"{k:04d}"
            (job / "in").mkdir(parents=True)
            (job / "out").mkdir()
            (job / "signature").write_text(signature)
            for alias, array in inputs.items():
                (job / "in" / f"{alias}.pb").write_bytes(tf.make_tensor_proto(np.asarray(array)).SerializeToString())
            dirs.append(job)
        flags = ["--xla_cpu_compilation_enabled"] if xla_cpu_compilation_enabled else []
        done = subprocess.run(
            [str(binary()), *flags, str(export_dir), *map(str, dirs)],
            capture_output=True,
            text=True,
            timeout=600,
            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
        )
        if done.returncode != 0:
            raise CcRunError(
                f"{export_dir}: {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else done.returncode}"
            )
        results = []
        for (signature, _), job in zip(jobs, dirs, strict=True):
            if (job / "error").exists():
                raise CcRunError(f"{export_dir} signature {signature!r}: {(job / 'error').read_text()}")
            results.append(
                {
                    p.stem: tf.make_ndarray(tensor_pb2.TensorProto.FromString(p.read_bytes()))
                    for p in (job / "out").glob("*.pb")
                }
            )
        return results
