"""Layer benchmark script: the same as `keras-lstm bench` (see keras_lstm_bench/layer.py)."""

import argparse
import sys

from keras_lstm.cli import use_tensorflow_defaults

use_tensorflow_defaults()  # as `keras-lstm bench` runs (BFC CPU allocator), before any tensor exists

from keras_lstm_bench import layer as benchmark  # noqa: E402

if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="bench/layer.py", description=benchmark.__doc__.splitlines()[0])
    benchmark.configure(parser)
    sys.exit(benchmark.run(parser.parse_args()))
