"""model.fit of a small two-layer seq2seq: keras_lstm against keras.layers.LSTM, epoch for epoch.

    python bench/seq2seq.py [--epochs 6] [--steps 60] [--quick]

The task is reversing a sequence of T=8 digits (teacher forcing): Embedding(11, 32) -> LSTM(128,
return_state) encodes; the decoder, Embedding -> LSTM(128, return_sequences, initial_state = the
encoder's state) -> Dense(10, softmax), reads the reversed digits shifted by a start token. Batch 32,
Adam(1e-3), sparse categorical cross-entropy, Keras's default compile. Both models start from the
same weights and see the same batches; their epochs alternate (A, B, B, A, ...), and each epoch's
median step (the first left out) and training accuracy are printed side by side, with the kernel
each keras_lstm layer ran.
"""

import argparse
import statistics
import sys

from keras_lstm.cli import use_tensorflow_defaults

use_tensorflow_defaults()  # as `keras-lstm bench` runs (BFC CPU allocator), before any tensor exists

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_lstm import LSTM  # noqa: E402
from keras_lstm_bench.fit import StepClock  # noqa: E402

T, UNITS, BATCH, START = 8, 128, 32, 10


def build(lstm) -> keras.Model:
    src, dec_in = keras.Input((T,), dtype="int32"), keras.Input((T,), dtype="int32")
    _, h, c = lstm(UNITS, return_state=True)(keras.layers.Embedding(11, 32)(src))
    y = lstm(UNITS, return_sequences=True)(keras.layers.Embedding(11, 32)(dec_in), initial_state=[h, c])
    model = keras.Model([src, dec_in], keras.layers.Dense(10, activation="softmax")(y))
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def data(n: int, seed: int = 0):
    src = np.random.default_rng(seed).integers(0, 10, size=(n, T)).astype("int32")
    target = src[:, ::-1]
    dec_in = np.concatenate([np.full((n, 1), START, "int32"), target[:, :-1]], axis=1)
    return [src, dec_in], target


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="bench/seq2seq.py", description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--steps", type=int, default=60, help="batches per epoch")
    parser.add_argument("--quick", action="store_true", help="2 epochs of 4 batches: a smoke run")
    args = parser.parse_args(argv)
    epochs, steps = (2, 4) if args.quick else (args.epochs, args.steps)
    keras.utils.set_random_seed(0)
    models = {"keras.layers.LSTM": build(keras.layers.LSTM), "keras_lstm": build(LSTM)}
    models["keras_lstm"].set_weights(models["keras.layers.LSTM"].get_weights())
    x, y = data(steps * BATCH)
    clock = StepClock()
    results = {name: [] for name in models}
    for epoch in range(epochs):
        order = list(models) if epoch % 2 == 0 else list(models)[::-1]
        for name in order:
            hist = models[name].fit(x, y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0, callbacks=[clock])
            results[name].append((statistics.median(clock.steps_ms()), hist.history["accuracy"][0]))
    kernels = [layer.kernel_choice.name for layer in models["keras_lstm"].layers if isinstance(layer, LSTM)]
    print(f"seq2seq model.fit, T={T}, units={UNITS}, batch {BATCH}, {steps} steps per epoch; keras_lstm kernels: "
          f"{', '.join(kernels)}")
    print("| epoch | keras.layers.LSTM ms/step | keras_lstm ms/step | speed-up | accuracy keras | accuracy keras_lstm |")
    print("|---|---:|---:|---:|---:|---:|")
    for epoch, ((t_ref, a_ref), (t_ours, a_ours)) in enumerate(zip(*results.values()), 1):
        print(f"| {epoch} | {t_ref:.2f} | {t_ours:.2f} | {t_ref / t_ours:.2f}× | {a_ref:.4f} | {a_ours:.4f} |")
    ref, ours = (statistics.median(t for t, _ in r) for r in results.values())
    print(f"median step: keras.layers.LSTM {ref:.2f} ms, keras_lstm {ours:.2f} ms: {ref / ours:.2f}×")
    return 0


if __name__ == "__main__":
    sys.exit(main())
