"""TensorFlow's start-up logging kept out of the user's terminal, unless asked for.

Importing TensorFlow prints lines that ask nothing of the user, some from C++ before any logging is
set up, so that no environment variable turns them off (absl writes them before ``InitializeLog``):

    WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
    I0000 00:00:1796552821.786068    4309 cudart_stub.cc:31] Could not find cuda drivers on your machine, ...
    E0000 00:00:1796552826.435139    4309 cuda_platform.cc:52] failed call to cuInit: ... UNKNOWN ERROR (303)

``import_tensorflow()`` imports TensorFlow and looks up its devices (where cuInit runs) while file
descriptor 2 goes through a filter that drops exactly the lines of :data:`NOISE` and passes every other
line on as it comes; then stderr is put back, so nothing after start-up is filtered and a traceback is
never swallowed. ``quiet_environment()`` sets ``TF_CPP_MIN_LOG_LEVEL=2`` (TensorFlow's INFO and WARNING
lines off; its errors still show) unless the environment sets it. TensorFlow's Python loggers
(``tensorflow``, ``absl``) are set to WARNING, so a command that logs its own INFO lines (export, serve)
does not also print TensorFlow's ("Assets written to", "Restoring parameters from", ...).

Asking for the logs: ``KERAS_LSTM_VERBOSE=1`` (or ``keras-lstm --verbose COMMAND``, or
``python -m keras_lstm.demo --verbose``), or ``TF_CPP_MIN_LOG_LEVEL=0`` / ``1`` set by the user: then
nothing is filtered and the log level is left to TensorFlow.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import threading
from collections.abc import Callable, Iterator

__all__ = [
    "NOISE",
    "PYTHON_LOGGERS",
    "VERBOSE_ENV",
    "filtered_stderr",
    "import_tensorflow",
    "is_noise",
    "quiet_environment",
    "verbose",
]

VERBOSE_ENV = "KERAS_LSTM_VERBOSE"
_ABSL = r"^[IWEF]\d{4} \S+ +\d+ "  # absl's prefix: severity, MMDD, time, thread id

# Start-up lines that ask nothing of the user. Anything else, errors included, goes through.
NOISE = tuple(
    re.compile(p)
    for p in (
        r"^WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR$",
        _ABSL + r"cudart_stub\.cc:\d+\] Could not find cuda drivers on your machine",
        _ABSL + r"cuda_platform\.cc:\d+\] failed call to cuInit",  # no GPU driver: TensorFlow runs on the CPU
        _ABSL + r"cuda_executor\.cc:\d+\] .*(NUMA node|non-zero NUMA)",
        _ABSL + r"cpu_feature_guard\.cc:\d+\] This TensorFlow binary is optimized",
        r"^To enable the following instructions: .*rebuild TensorFlow with the appropriate compiler flags\.$",
        _ABSL + r"\S+\.cc:\d+\] oneDNN custom operations are on\.",
        _ABSL + r"\S+\.cc:\d+\] oneDNN supports DT_BOOL only on platforms with AVX-512",
    )
)
_TRUE = ("1", "true", "yes", "on")
PYTHON_LOGGERS = ("tensorflow", "absl")  # TensorFlow's Python-side loggers, held at WARNING unless verbose


def verbose() -> bool:
    """Whether the user asked for TensorFlow's logs: ``KERAS_LSTM_VERBOSE`` true, or their own
    ``TF_CPP_MIN_LOG_LEVEL`` at 0 or 1."""
    if os.environ.get(VERBOSE_ENV, "").strip().lower() in _TRUE:
        return True
    return os.environ.get("TF_CPP_MIN_LOG_LEVEL", "").strip() in ("0", "1")


def is_noise(line: str) -> bool:
    """Whether ``line`` (without its newline) is one of :data:`NOISE`."""
    return any(p.search(line) for p in NOISE)


def quiet_environment() -> None:
    """``TF_CPP_MIN_LOG_LEVEL=2`` unless the user set it or asked for the logs; read by TensorFlow when it
    is imported, and inherited by every subprocess started after."""
    if not verbose():
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@contextlib.contextmanager
def filtered_stderr(drop: Callable[[str], bool] = is_noise) -> Iterator[None]:
    """Route file descriptor 2 (C++ and Python alike) through a pipe; a thread writes each line that
    ``drop`` does not match to the real stderr. On exit the real stderr is restored and every line
    written inside has been passed on."""
    sys.stderr.flush()
    real = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)

    def pump() -> None:
        with os.fdopen(read_end, "rb") as pipe:
            for raw in pipe:
                if not drop(raw.decode("utf-8", "replace").rstrip("\r\n")):
                    os.write(real, raw)

    thread = threading.Thread(target=pump, name="keras-lstm-stderr-filter", daemon=True)
    thread.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(real, 2)  # closes the pipe's last write end, so the pump reads to the end and stops
        thread.join(timeout=10)
        os.close(real)


def import_tensorflow() -> None:
    """Import TensorFlow and initialise its devices quietly (see the module's docstring); a no-op when it
    is imported already. An import error is raised as it is, after stderr is restored."""
    quiet_environment()
    if verbose():
        import tensorflow  # noqa: F401

        return
    for name in PYTHON_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    if "tensorflow" in sys.modules:
        return
    with filtered_stderr():
        import tensorflow as tf

        tf.config.list_physical_devices()  # cuInit, and its error line on a machine without a GPU driver
        _spend_bool_rewrite_notice(tf)


def _spend_bool_rewrite_notice(tf) -> None:
    """On a CPU with AVX-512, TensorFlow's oneDNN graph rewrite logs an error line once per process, at the
    first graph holding a bool op it would rewrite ("oneDNN supports DT_BOOL only on platforms with AVX-512.
    Falling back to the default Eigen-based implementation"): any masked model meets it. One tiny such graph,
    run here inside the filter in a v1 Session (which leaves the eager context, and so the thread settings
    that `keras-lstm serve` makes later, untouched), spends that line. A bool Transpose of 2 x 3 (grappler
    drops a 1 x 1 one)."""
    import numpy as np

    with tf.Graph().as_default() as graph:
        bools = tf.compat.v1.placeholder(tf.bool, [2, 3])
        transposed = tf.transpose(bools)
        with tf.compat.v1.Session(graph=graph) as session:
            session.run(transposed, {bools: np.zeros((2, 3), bool)})
