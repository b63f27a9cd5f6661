"""model.fit of a small two-layer seq2seq: keras_lstm against keras.layers.LSTM, epoch for epoch.

    python bench/seq2seq.py [--epochs 6] [--steps 60] [--quick]

The task is reversing a sequence of T=8 digits (teacher forcing): Embedding(11, 32) -> LSTM(128,
return_state) encodes; the decoder, Embedding -> LSTM(128, return_sequences, initial_state = the
encoder's state) -> Dense(10, softmax), reads the reversed digits shifted by a start token. Batch 32,
Adam(1e-3), sparse categorical cross-entropy, Keras's default compile. Both models start from the
same weights and see the same batches; their epochs alternate (A, B, B, A, ...), and each epoch's
median step (the first left out) and training accuracy are printed side by side. keras_lstm runs
twice, on its fused kernel and on its XLA loop (``kernel=``), so each is measured.
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
    models = {"keras.layers.LSTM": build(keras.layers.LSTM)}
    for kernel in ("fused", "xla"):
        models[f"keras_lstm {kernel}"] = build(lambda *a, k=kernel, **kw: LSTM(*a, kernel=k, **kw))
        models[f"keras_lstm {kernel}"].set_weights(models["keras.layers.LSTM"].get_weights())
    x, y = data(steps * BATCH)
    clock = StepClock()
    results = {name: [] for name in models}
    for epoch in range(epochs):
        order = list(models)[epoch % len(models) :] + list(models)[: epoch % len(models)]
        for name in order:
            hist = models[name].fit(x, y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0, callbacks=[clock])
            results[name].append((statistics.median(clock.steps_ms()), hist.history["accuracy"][0]))
    kernels = {
        name: [layer.kernel_choice.name for layer in m.layers if isinstance(layer, LSTM)]
        for name, m in models.items()
        if name != "keras.layers.LSTM"
    }
    print(f"seq2seq model.fit, T={T}, units={UNITS}, batch {BATCH}, {steps} steps per epoch; kernels run: {kernels}")
    names = list(models)
    print(
        "| epoch | "
        + " | ".join(f"{n} ms/step" for n in names)
        + " | "
        + " | ".join(f"accuracy {n}" for n in names)
        + " |"
    )
    print("|---|" + "---:|" * (2 * len(names)))
    for epoch, rows in enumerate(zip(*results.values(), strict=True), 1):
        print(
            f"| {epoch} | "
            + " | ".join(f"{t:.2f}" for t, _ in rows)
            + " | "
            + " | ".join(f"{a:.4f}" for _, a in rows)
            + " |"
        )
    medians = {name: statistics.median(t for t, _ in r) for name, r in results.items()}
    ref = medians["keras.layers.LSTM"]
    print("median step: " + ", ".join(f"{n} {t:.2f} ms ({ref / t:.2f}× keras.layers.LSTM)" for n, t in medians.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
