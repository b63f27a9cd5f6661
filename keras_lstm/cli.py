"""The `keras-lstm` command.

Each sub-command lives in its own module, which exposes two functions:

    configure(parser: argparse.ArgumentParser) -> None   # add its arguments
    run(args: argparse.Namespace) -> int                 # do the work, return an exit code

Modules are imported only when their command runs, so `keras-lstm --help` stays fast and a
command's heavy imports (TensorFlow, gRPC, matplotlib) are paid only by that command.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up chatter; set it to 0 to see it

__all__ = ["main", "COMMANDS"]

# command name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("keras_lstm.train.cli", "train a model on a task (adding, copy, charlm, co2)"),
    "sample": ("keras_lstm.train.sample", "generate text from a charlm run"),
    "export": ("keras_lstm.export", "export a model as a TF Serving SavedModel version"),
    "serve": ("serving.cli", "run the local TF-Serving-compatible gRPC server"),
    "gates": ("keras_lstm.gates_plot", "draw a layer's gates over time as heatmaps"),
    "bench": ("keras_lstm.benchmark", "benchmark the layer against keras.layers.LSTM and torch"),
    "parity": ("keras_lstm.parity", "check the layer against keras.layers.LSTM with the same weights"),
}


def _parser_for(argv: list[str]) -> tuple[argparse.ArgumentParser, object | None]:
    parser = argparse.ArgumentParser(prog="keras-lstm", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    chosen = argv[0] if argv else None
    module = None
    for name, (module_name, help_text) in COMMANDS.items():
        sub_parser = sub.add_parser(name, help=help_text, description=help_text)
        if name == chosen:
            module = importlib.import_module(module_name)
            module.configure(sub_parser)
    return parser, module


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser, module = _parser_for(argv)
    args = parser.parse_args(argv)
    if module is None:
        parser.print_help()
        return 2
    from keras_lstm.errors import LSTMArgumentError

    try:
        return int(module.run(args) or 0)
    except LSTMArgumentError as err:  # a bad argument: one clear line, no traceback
        print(f"keras-lstm {argv[0]}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
