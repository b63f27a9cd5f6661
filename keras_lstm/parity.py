"""``keras-lstm parity``: keras_lstm.LSTM against keras.layers.LSTM loaded with the same weights.

Prints the largest forward and gradient differences on random data, for the XLA and graph paths,
with and without a mask. The tests check a much larger grid; this is the quick look a user can run.
"""

from __future__ import annotations

import argparse

import numpy as np

from keras_lstm.argtypes import positive_int

__all__ = ["configure", "parity_report", "run"]


def parity_report(batch=8, time=20, features=5, units=16, seed=0) -> list[dict]:
    import keras
    import tensorflow as tf

    from keras_lstm import LSTM

    rng = np.random.default_rng(seed)
    x = tf.constant(rng.standard_normal((batch, time, features)), tf.float32)
    mask = np.ones((batch, time), bool)
    mask[: batch // 2, time // 2 :] = False  # right padding on half the rows
    ref = keras.layers.LSTM(units, return_sequences=True)
    ref(x)
    rows = []
    for jit in (True, False):
        ours = LSTM(units, return_sequences=True, jit_compile=jit)
        ours(x)
        ours.set_weights(ref.get_weights())
        for m in (None, mask):
            outs, grads = [], []
            for layer in (ref, ours):
                with tf.GradientTape() as tape:
                    tape.watch(x)
                    y = layer(x, mask=m)
                    loss = tf.reduce_sum(tf.sin(y))
                outs.append(y.numpy())
                grads.append([g.numpy() for g in tape.gradient(loss, [x, *layer.trainable_weights])])
            rel = max(np.abs(a - b).max() / max(np.abs(a).max(), 1e-12) for a, b in zip(*grads, strict=True))
            rows.append(
                {
                    "path": "XLA" if jit else "graph",
                    "mask": m is not None,
                    "forward_max_abs": float(np.abs(outs[0] - outs[1]).max()),
                    "grad_max_rel": float(rel),
                }
            )
    return rows


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--units", type=positive_int, default=16, help="units of both layers (default: 16)")
    parser.add_argument("--time", type=positive_int, default=20, help="time steps of the random input (default: 20)")


def run(args: argparse.Namespace) -> int:
    rows = parity_report(units=args.units, time=args.time)
    print("keras_lstm.LSTM vs keras.layers.LSTM, same weights (float32):")
    ok = True
    for r in rows:
        good = r["forward_max_abs"] <= 1e-5 and r["grad_max_rel"] <= 1e-4
        ok &= good
        print(
            f"  {r['path']:5s} mask={r['mask']!s:5s}  forward max |diff| {r['forward_max_abs']:.1e}  "
            f"gradients max rel diff {r['grad_max_rel']:.1e}  {'ok' if good else 'MISMATCH'}"
        )
    return 0 if ok else 1
