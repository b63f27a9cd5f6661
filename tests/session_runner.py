"""Run by the export tests in a fresh process: load SavedModels as TF Serving does (no keras, no
keras_lstm, no ``tf.saved_model.load``) and run their signatures.

    python session_runner.py JOBS.pkl RESULTS.pkl

Loading: ``tf.compat.v1.saved_model.loader.load`` into a Session (the MetaGraph tagged ``serve``, its
restore op, its init op), the path of ``saved_model_cli run`` and of TF Serving's ``LoadSavedModel``.
Running: ``Session.run`` feeding and fetching the tensor names written in the SignatureDef.

JOBS is a list of (version_dir, kind, inputs). kind is a signature name, called with ``inputs``, or
"stream": ``init_state`` for the batch, then ``step`` over ``inputs["sequences"]``'s time axis;
it returns every step's outputs stacked on axis 1 and the last h and c.
"""

import os
import pickle
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import tensorflow as tf


class Loaded:
    """One version in its own Graph and Session, as TF Serving holds it."""

    def __init__(self, path):
        self.session = tf.compat.v1.Session(graph=tf.Graph())
        meta_graph = tf.compat.v1.saved_model.loader.load(self.session, ["serve"], path)
        self.signatures = {k: v for k, v in meta_graph.signature_def.items() if not k.startswith("__")}

    def run(self, signature, **inputs):
        sig = self.signatures[signature]
        fetches = {alias: info.name for alias, info in sig.outputs.items()}
        return self.session.run(fetches, {sig.inputs[alias].name: value for alias, value in inputs.items()})


def stream(loaded, sequences):
    state = loaded.run("init_state", batch_size=np.int32(sequences.shape[0]))
    h, c, outs = state["h"], state["c"], []
    for t in range(sequences.shape[1]):
        out = loaded.run("step", x=sequences[:, t], h=h, c=c)
        h, c = out["h"], out["c"]
        outs.append(out["outputs"])
    return {"outputs": np.stack(outs, axis=1), "h": h, "c": c}


def main(jobs_path, results_path):
    with open(jobs_path, "rb") as f:
        jobs = pickle.load(f)
    loaded, results = {}, []
    for path, kind, inputs in jobs:
        if path not in loaded:
            loaded[path] = Loaded(path)
        model = loaded[path]
        results.append(stream(model, inputs["sequences"]) if kind == "stream" else model.run(kind, **inputs))
    with open(results_path, "wb") as f:
        pickle.dump({"results": results, "signatures": {p: sorted(m.signatures) for p, m in loaded.items()}}, f)


if __name__ == "__main__":
    main(*sys.argv[1:])
