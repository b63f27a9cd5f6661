"""One loaded model version: its SavedModel, its SignatureDefs, and the calls into it.

Signatures are read from `saved_model.pb` itself, so GetModelMetadata answers with the
same SignatureDefMap TF Serving would. A version counts its requests in flight, so that
unloading it can wait for them to finish instead of dropping them.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Mapping, Sequence

import grpc
import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import get_model_metadata_pb2, prediction_log_pb2

from serving import tensors
from serving.errors import BadRequestError, ServingError, status_code
from serving.requests import Signature, check_inputs

__all__ = ["Servable", "WARMUP_FILE"]

log = logging.getLogger("serving.server")
WARMUP_FILE = Path("assets.extra") / "tf_serving_warmup_requests"


class Servable:
    """A model version, loaded. Thread-safe: many requests may `run` at once."""

    def __init__(self, name: str, version: int, path: Path) -> None:
        self.name, self.version, self.path = name, version, path
        meta_graph = _read_meta_graph(path)
        self.signature_defs = get_model_metadata_pb2.SignatureDefMap()
        for key, sig in meta_graph.signature_def.items():
            if not key.startswith("__"):  # __saved_model_init_op is not a callable signature
                self.signature_defs.signature_def[key].CopyFrom(sig)
        self.signatures = {k: Signature.from_proto(k, v) for k, v in self.signature_defs.signature_def.items()}
        self._module = tf.saved_model.load(str(path))
        self._functions = {k: self._module.signatures[k] for k in self.signatures}
        self._in_flight = 0
        self._idle = threading.Condition()

    # -- requests in flight ----------------------------------------------------------------
    def acquire(self) -> None:
        with self._idle:
            self._in_flight += 1

    def release(self) -> None:
        with self._idle:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._idle.notify_all()

    def drain(self, timeout_s: float) -> bool:
        """Wait until no request is in flight; False if some still were after timeout_s."""
        with self._idle:
            return self._idle.wait_for(lambda: self._in_flight == 0, timeout=timeout_s)

    # -- running ---------------------------------------------------------------------------
    def signature(self, name: str) -> Signature:
        try:
            return self.signatures[name or "serving_default"]
        except KeyError:
            raise BadRequestError(f'Serving signature key "{name}" not found.',
                                  code=grpc.StatusCode.FAILED_PRECONDITION) from None

    def check(self, signature: str, inputs: Mapping[str, np.ndarray], output_filter: Sequence[str]) -> None:
        sig = self.signature(signature)
        check_inputs(sig, inputs)
        unknown = sorted(set(output_filter) - set(sig.outputs))
        if unknown:
            raise BadRequestError(
                f"output tensor alias not found in signature: {unknown[0]} Outputs expected to be in the "
                f"set {{{','.join(sorted(sig.outputs))}}}.", code=grpc.StatusCode.INVALID_ARGUMENT)

    def run(self, signature: str, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Call a signature on already-checked inputs; TF errors become ServingError."""
        fn = self._functions[signature]
        try:
            outputs = fn(**{k: tf.constant(v) for k, v in inputs.items()})
        except tf.errors.OpError as err:
            code = status_code(err.error_code)
            raise ServingError(err.message, code=code) from err
        return {k: v.numpy() for k, v in outputs.items()}

    def warm_up(self) -> int:
        """Replay assets.extra/tf_serving_warmup_requests (PredictionLog records) like TF Serving."""
        path = self.path / WARMUP_FILE
        if not path.exists():
            return 0
        count, start = 0, time.monotonic()
        for record in tf.data.TFRecordDataset(str(path)):
            log_entry = prediction_log_pb2.PredictionLog.FromString(record.numpy())
            if log_entry.WhichOneof("log_type") != "predict_log":
                raise ValueError(f"{path}: only predict_log warmup records are supported")
            request = log_entry.predict_log.request
            signature = request.model_spec.signature_name or "serving_default"
            inputs = {k: tensors.to_array(v) for k, v in request.inputs.items()}
            self.check(signature, inputs, request.output_filter)
            self.run(signature, inputs)
            count += 1
        log.info("model %s version %d: replayed %d warmup requests in %.2fs",
                 self.name, self.version, count, time.monotonic() - start)
        return count


def _read_meta_graph(path: Path):  # -> meta_graph_pb2.MetaGraphDef
    saved_model = saved_model_pb2.SavedModel.FromString((path / "saved_model.pb").read_bytes())
    for meta_graph in saved_model.meta_graphs:
        if "serve" in meta_graph.meta_info_def.tags:
            return meta_graph
    raise ValueError(f"{path}: no MetaGraph tagged 'serve'")

