"""The `keras-lstm` command.

Each sub-command lives in its own module, which exposes two functions:

    configure(parser: argparse.ArgumentParser) -> None   # add its arguments
    run(args: argparse.Namespace) -> int                 # do the work, return an exit code

Modules are imported only when their command runs, and import nothing heavy at module level, so
`keras-lstm --help` and `keras-lstm COMMAND --help` answer without importing TensorFlow, and a
command's heavy imports (TensorFlow, gRPC, matplotlib) are paid only by that command.

Output is the command's own: TensorFlow is imported through :func:`keras_lstm.quiet.import_tensorflow`
before the command runs, so its start-up lines stay out of the terminal; `keras-lstm --verbose COMMAND`
or `KERAS_LSTM_VERBOSE=1` shows them.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from types import ModuleType
from typing import NamedTuple

from keras_lstm import extras, quiet
from keras_lstm._version import __version__

__all__ = ["COMMANDS", "TENSORFLOW_DEFAULTS", "Command", "main", "use_tensorflow_defaults"]

# What every keras-lstm command (and the bench/ scripts) sets for TensorFlow unless the environment already does:
# - TF_CPP_MIN_LOG_LEVEL=2: no INFO or WARNING lines from TensorFlow's C++ (its errors still show); not set
#   when the user asks for the logs (keras_lstm.quiet.verbose()).
# - TF_CPU_ALLOCATOR_USE_BFC=true: TensorFlow's own BFC allocator for CPU tensors, which keeps freed memory for
#   reuse. With plain malloc the large buffers of every step go back to the OS and return as fresh pages, and on
#   the medium benchmark shape the page faults cost more than the recurrence's arithmetic: the layer's forward
#   pass takes ~87 ms with malloc and ~54 ms with BFC (docs/layer.md). It is read at TensorFlow's first CPU
#   allocation, so it must be set before any tensor exists.
TENSORFLOW_DEFAULTS = {"TF_CPP_MIN_LOG_LEVEL": "2", "TF_CPU_ALLOCATOR_USE_BFC": "true"}
_SET_HERE: set[str] = set()  # the defaults this process set (not the user)


def use_tensorflow_defaults() -> None:
    """Set each of :data:`TENSORFLOW_DEFAULTS` that the environment does not set already (the log level
    only while the user has not asked for TensorFlow's logs)."""
    for name, value in TENSORFLOW_DEFAULTS.items():
        if name == "TF_CPP_MIN_LOG_LEVEL" and quiet.verbose():
            continue
        if name not in os.environ:
            os.environ[name] = value
            _SET_HERE.add(name)


def _show_tensorflow_logs() -> None:
    os.environ[quiet.VERBOSE_ENV] = "1"  # inherited by the server's and the demo's subprocesses too
    if "TF_CPP_MIN_LOG_LEVEL" in _SET_HERE:
        del os.environ["TF_CPP_MIN_LOG_LEVEL"]
        _SET_HERE.discard("TF_CPP_MIN_LOG_LEVEL")


use_tensorflow_defaults()


class Command(NamedTuple):
    module: str  # exposes configure(parser) and run(args)
    extra: str  # the pip extra it needs (keras_lstm.extras)
    help: str


COMMANDS: dict[str, Command] = {
    "train": Command(
        "keras_lstm.train.cli",
        "train",
        "train a model on a task (adding, copy, charlm, co2) or on your CSV (series, classify)",
    ),
    "sample": Command("keras_lstm.train.sample", "train", "generate text from a charlm run"),
    "export": Command("keras_lstm.export", "tensorflow", "export a model as a TF Serving SavedModel version"),
    "serve": Command("serving.cli", "serve", "run the local TF-Serving-compatible gRPC and REST server"),
    "gates": Command("keras_lstm.gates_plot", "train", "draw a layer's gates over time as heatmaps"),
    "bench": Command("keras_lstm_bench.layer", "bench", "benchmark the layer against keras.layers.LSTM and torch"),
    "parity": Command(
        "keras_lstm.parity", "tensorflow", "check the layer against keras.layers.LSTM with the same weights"
    ),
}


def _parser_for(argv: list[str]) -> tuple[argparse.ArgumentParser, ModuleType | None]:
    parser = argparse.ArgumentParser(prog="keras-lstm", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--verbose",
        dest="tensorflow_logs",
        action="store_true",
        help=f"show TensorFlow's start-up logs (also: {quiet.VERBOSE_ENV}=1)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    chosen = next((a for a in argv if not a.startswith("-")), None)  # the command, after any --verbose
    module = None
    for name, command in COMMANDS.items():
        sub_parser = sub.add_parser(name, help=command.help, description=command.help)
        if name == chosen:
            extras.require(command.extra, f"keras-lstm {name}")  # before its module imports what is absent
            module = importlib.import_module(command.module)
            module.configure(sub_parser)
    return parser, module


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        parser, module = _parser_for(argv)
    except extras.MissingExtraError as err:  # one line naming the extra to install
        print(f"keras-lstm: error: {err}", file=sys.stderr)
        return 2
    args = parser.parse_args(argv)
    if module is None:
        parser.print_help()
        return 2
    if vars(args).pop("tensorflow_logs"):  # the commands see only their own arguments
        _show_tensorflow_logs()
    backend = getattr(args, "backend", None)  # train --backend: Keras reads it once, at its import
    if backend is not None:
        if "keras" in sys.modules and sys.modules["keras"].config.backend() != backend:
            parser.error(
                f"--backend {backend}: Keras already runs {sys.modules['keras'].config.backend()!r} in this "
                f"process; set KERAS_BACKEND={backend} before starting Python"
            )
        os.environ["KERAS_BACKEND"] = backend
    quiet.import_tensorflow()
    if COMMANDS[args.command].module.startswith("keras_lstm"):
        import keras_lstm

        keras_lstm.load_all()  # the layer registered with Keras before the command loads any model
    from keras_lstm.errors import LSTMArgumentError

    try:
        return int(module.run(args) or 0)
    except LSTMArgumentError as err:  # a bad argument: one clear line, no traceback
        print(f"keras-lstm {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
