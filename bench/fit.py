"""model.fit benchmark script: LSTM -> Dense(1), Adam, MSE (see keras_lstm_bench/fit.py)."""

import argparse
import sys

from keras_lstm.cli import use_tensorflow_defaults

use_tensorflow_defaults()  # as `keras-lstm bench` runs (BFC CPU allocator), before any tensor exists

from keras_lstm_bench import fit as fit_benchmark  # noqa: E402

if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="bench/fit.py", description=fit_benchmark.__doc__.splitlines()[0])
    fit_benchmark.configure(parser)
    sys.exit(fit_benchmark.run(parser.parse_args()))
