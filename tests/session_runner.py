"""Run by the export tests in a fresh process: load SavedModels with tf.saved_model.load only (no
keras, no keras_lstm) and call their signatures.

    python export_runner.py JOBS.pkl RESULTS.pkl

JOBS is a list of (version_dir, kind, inputs). kind is a signature name, called with ``inputs``, or
"stream": ``init_state`` for the batch, then ``step`` over ``inputs["sequences"]``'s time axis;
it returns every step's outputs stacked on axis 1 and the last h and c.
"""

import os
import pickle
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402


def stream(loaded, sequences):
    state = loaded.signatures["init_state"](batch_size=tf.constant(sequences.shape[0], tf.int32))
    h, c, outs = state["h"], state["c"], []
    for t in range(sequences.shape[1]):
        out = loaded.signatures["step"](x=tf.constant(sequences[:, t]), h=h, c=c)
        h, c = out["h"], out["c"]
        outs.append(out["outputs"].numpy())
    return {"outputs": np.stack(outs, axis=1), "h": h.numpy(), "c": c.numpy()}


def main(jobs_path, results_path):
    with open(jobs_path, "rb") as f:
        jobs = pickle.load(f)
    loaded, results = {}, []
    for path, kind, inputs in jobs:
        if path not in loaded:
            loaded[path] = tf.saved_model.load(path)
        model = loaded[path]
        if kind == "stream":
            results.append(stream(model, inputs["sequences"]))
        else:
            out = model.signatures[kind](**{k: tf.constant(v) for k, v in inputs.items()})
            results.append({k: v.numpy() for k, v in out.items()})
    with open(results_path, "wb") as f:
        pickle.dump({"results": results, "signatures": {p: sorted(m.signatures.keys()) for p, m in loaded.items()}}, f)


if __name__ == "__main__":
    main(*sys.argv[1:])
