"""model.fit benchmark script: LSTM -> Dense(1), Adam, MSE (see keras_lstm_bench/fit.py).

``--backend jax|torch`` runs it on that Keras backend (keras_lstm_bench/backend_fit.py), one backend
per process: KERAS_BACKEND is set here, before Keras is imported."""

import argparse
import os
import sys

for i, arg in enumerate(sys.argv):  # Keras reads its backend once, at import: set it before anything imports it
    if arg.startswith("--backend"):
        os.environ["KERAS_BACKEND"] = arg.split("=", 1)[1] if "=" in arg else sys.argv[i + 1]

from keras_lstm.cli import use_tensorflow_defaults  # noqa: E402

use_tensorflow_defaults()  # as `keras-lstm bench` runs (BFC CPU allocator), before any tensor exists

from keras_lstm_bench import fit as fit_benchmark  # noqa: E402

if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="bench/fit.py", description=fit_benchmark.__doc__.splitlines()[0])
    fit_benchmark.configure(parser)
    sys.exit(fit_benchmark.run(parser.parse_args()))
