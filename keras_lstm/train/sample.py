"""``keras-lstm sample RUN``: generate text from a charlm run, one character at a time, with a temperature."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

import numpy as np

from keras_lstm.argtypes import non_negative_int, positive_float
from keras_lstm.train.errors import TrainArgumentError

__all__ = ["configure", "generate", "load_run", "run"]


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN", help="a charlm run directory (holding model.keras, vocab.json)")
    parser.add_argument("--length", type=non_negative_int, default=500, help="characters to generate")
    parser.add_argument("--temperature", type=positive_float, default=0.8, help="softmax temperature (> 0)")
    parser.add_argument("--prime", default="def ", help="text to start from")
    parser.add_argument("--seed", type=non_negative_int, default=None, help="seed for repeatable samples")


def load_run(run_dir: str):
    """(model, vocabulary) of a charlm run."""
    import keras

    import keras_lstm.initializers
    import keras_lstm.layer  # noqa: F401
    from keras_lstm.export.source import not_a_keras_archive

    expected = "a finished charlm run directory holding model.keras and vocab.json"
    model_path, vocab_path = os.path.join(run_dir, "model.keras"), os.path.join(run_dir, "vocab.json")
    task = _task_of(run_dir)
    if task not in (None, "charlm"):
        raise TrainArgumentError("RUN", run_dir, f"{expected} (its config.json names the task {task!r})")
    if not (os.path.isfile(model_path) and os.path.isfile(vocab_path)):
        raise TrainArgumentError("RUN", run_dir, expected)
    try:
        with open(vocab_path, encoding="utf-8") as f:
            vocab = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise TrainArgumentError("RUN", run_dir, f"{expected} (vocab.json is not JSON: {err})") from None
    if not (isinstance(vocab, list) and vocab and all(isinstance(c, str) and len(c) == 1 for c in vocab)):
        raise TrainArgumentError("RUN", run_dir, f"{expected} (vocab.json is not a list of characters)")
    why = not_a_keras_archive(Path(model_path))
    if why is not None:
        raise TrainArgumentError("RUN", run_dir, f"{expected} ({why})")
    model = keras.saving.load_model(model_path)
    names = {layer.name for layer in model.layers}
    if not {"embedding", "rnn", "logits"} <= names:
        raise TrainArgumentError(
            "RUN", run_dir, f"{expected} (its model has layers {sorted(names)}, not embedding, rnn and logits)"
        )
    return model, vocab


def _task_of(run_dir: str) -> str | None:
    """The task a run directory's config.json names, or None where it names none."""
    try:
        with open(os.path.join(run_dir, "config.json"), encoding="utf-8") as f:
            config = json.load(f)
    except (OSError, ValueError):  # no config.json (a bare model and vocabulary), or not JSON: not told
        return None
    return config.get("task") if isinstance(config, dict) else None


def generate(model, vocab, prime: str, length: int, temperature: float, seed: int | None = None) -> str:
    """``prime`` followed by ``length`` sampled characters.

    The recurrent layer is rebuilt with ``return_state=True`` and the same weights, so each new
    character costs one step rather than a pass over the whole text.
    """
    from keras import ops

    if not (temperature > 0 and math.isfinite(temperature)):
        raise TrainArgumentError("--temperature", temperature, "a finite number > 0")
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
