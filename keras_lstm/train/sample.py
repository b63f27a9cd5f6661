"""``keras-lstm sample RUN``: generate text from a charlm run, one character at a time, with a temperature."""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

from keras_lstm.train.errors import TrainArgumentError

__all__ = ["configure", "generate", "load_run", "run"]


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN", help="a charlm run directory (holding model.keras, vocab.json)")
    parser.add_argument("--length", type=int, default=500, help="characters to generate")
    parser.add_argument("--temperature", type=float, default=0.8, help="softmax temperature (> 0)")
    parser.add_argument("--prime", default="def ", help="text to start from")
    parser.add_argument("--seed", type=int, default=None, help="seed for repeatable samples")


def load_run(run_dir: str):
    """(model, vocabulary) of a charlm run."""
    import keras

    import keras_lstm.initializers
    import keras_lstm.layer  # noqa: F401

    model_path, vocab_path = os.path.join(run_dir, "model.keras"), os.path.join(run_dir, "vocab.json")
    if not (os.path.isfile(model_path) and os.path.isfile(vocab_path)):
        raise TrainArgumentError("RUN", run_dir, "a finished charlm run directory holding model.keras and vocab.json")
    with open(vocab_path, encoding="utf-8") as f:
        vocab = json.load(f)
    return keras.saving.load_model(model_path), vocab


def generate(model, vocab, prime: str, length: int, temperature: float, seed: int | None = None) -> str:
    """``prime`` followed by ``length`` sampled characters.

    The recurrent layer is rebuilt with ``return_state=True`` and the same weights, so each new
    character costs one step rather than a pass over the whole text.
    """
    from keras import ops

    if not temperature > 0:
        raise TrainArgumentError("--temperature", temperature, "a number > 0")
    if isinstance(length, bool) or not isinstance(length, int) or length < 0:
        raise TrainArgumentError("--length", length, "an integer >= 0")
    index = {ch: i for i, ch in enumerate(vocab)}
    unknown = sorted({ch for ch in prime if ch not in index})
    if unknown:
        raise TrainArgumentError("--prime", prime, f"text made of the run's characters (not {unknown!r})")
    prime = prime or ("\n" if "\n" in index else vocab[0])
    embedding, rnn, head = model.get_layer("embedding"), model.get_layer("rnn"), model.get_layer("logits")
    step_rnn = rnn.__class__.from_config({**rnn.get_config(), "return_sequences": True, "return_state": True})
    step_rnn.build(tuple(embedding.compute_output_shape((1, 1))))
    step_rnn.set_weights(rnn.get_weights())

    rng = np.random.default_rng(seed)
    ids = np.asarray([[index[ch] for ch in prime]], dtype=np.int32)
    states, out = None, list(prime)
    for _ in range(length):
        result = step_rnn(embedding(ids), initial_state=states)
        h, states = result[0], list(result[1:])
        logits = ops.convert_to_numpy(head(h[:, -1, :]))[0].astype(np.float64) / temperature
        p = np.exp(logits - logits.max())
        nxt = int(rng.choice(len(vocab), p=p / p.sum()))
        out.append(vocab[nxt])
        ids = np.asarray([[nxt]], dtype=np.int32)
    return "".join(out)


def run(args: argparse.Namespace) -> int:
    try:
        model, vocab = load_run(args.run_dir)
        text = generate(model, vocab, args.prime, args.length, args.temperature, args.seed)
    except TrainArgumentError as err:
        print(f"keras-lstm sample: error: {err}", file=sys.stderr)
        return 2
    print(text)
    return 0
