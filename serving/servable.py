"""One loaded model version, loaded and run the way TF Serving's C++ server does.

TF Serving calls ``LoadSavedModel``: the MetaGraph tagged ``serve`` goes into a Session, the
SavedModel's restore op runs, then its init op; every Predict is then a ``Session::Run`` that
feeds and fetches the tensor names written in the SignatureDef. This class takes the same path
through ``tf.compat.v1.saved_model.loader.load`` and ``Session.make_callable`` (one callable per
signature, inputs and outputs, so a request pays for no graph lookups), never through
``tf.saved_model.load``, which resolves variables through the object graph and so runs exports
that TF Serving cannot. GetModelMetadata, the input checks and the warmup replay all read the
MetaGraphDef the loader returned. A version counts its requests in flight, so that unloading it
can wait for them to finish instead of dropping them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import grpc
import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import config_pb2
from tensorflow.python.util import deprecation  # silence(): no public API quiets one call
from tensorflow_serving.apis import get_model_metadata_pb2, prediction_log_pb2

from serving.admission import RequestLimits, decode_inputs, output_fetches
from serving.errors import BadRequestError, ServingError, clip, status_code
from serving.requests import Signature

__all__ = ["SERVE_TAG", "WARMUP_FILE", "Servable"]

log = logging.getLogger("serving.server")
WARMUP_FILE = Path("assets.extra") / "tf_serving_warmup_requests"
SERVE_TAG = "serve"


class Servable:
    """A model version, loaded into its own Session. Thread-safe: many requests may `run` at once."""

    def __init__(self, name: str, version: int, path: Path) -> None:
        self.name, self.version, self.path = name, version, Path(path)
        self._graph = tf.Graph()
        self._session = tf.compat.v1.Session(graph=self._graph, config=_session_config())
        try:
            # TensorFlow marks the v1 loader deprecated in favour of tf.saved_model.load, which is the path
            # TF Serving does not take (module docstring); its notice would only mislead the log's reader.
            with deprecation.silence():
                meta_graph = tf.compat.v1.saved_model.loader.load(self._session, [SERVE_TAG], str(self.path))
        except BaseException:
            self._session.close()
            raise
        self.signature_defs = get_model_metadata_pb2.SignatureDefMap()
        for key, sig in meta_graph.signature_def.items():
            if not key.startswith("__"):  # __saved_model_init_op is not a callable signature
                self.signature_defs.signature_def[key].CopyFrom(sig)
        self.signatures = {k: Signature.from_proto(k, v) for k, v in self.signature_defs.signature_def.items()}
        self._callables: dict[tuple, Callable] = {}
        self._callables_lock = threading.Lock()
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

    def close(self) -> None:
        """Free the Session (its variables and kernels); the version cannot run afterwards."""
        self._session.close()

    # -- running ---------------------------------------------------------------------------
    def signature(self, name: str) -> Signature:
        try:
            return self.signatures[name or "serving_default"]
        except KeyError:
            raise BadRequestError(
                f'Serving signature key "{clip(name)}" not found.', code=grpc.StatusCode.FAILED_PRECONDITION
            ) from None

    def run(
        self,
        signature: str,
        inputs: Mapping[str, np.ndarray],
        output_filter: Sequence[str] = (),
        timeout_s: float | None = None,
    ) -> dict[str, np.ndarray]:
        """``Session.run`` of a signature on inputs already checked (serving.admission): every output, or
        those in ``output_filter``. ``timeout_s`` becomes ``RunOptions.timeout_in_ms``, as TF Serving sets it
        from the request's deadline. TensorFlow errors become ServingError with their status code."""
        feeds = tuple(sorted(inputs))
        fetches = tuple(output_filter) or tuple(sorted(self.signature_defs.signature_def[signature].outputs))
        call = self._callable(signature, feeds, fetches)
        options = None
        if timeout_s is not None:
            options = config_pb2.RunOptions(timeout_in_ms=max(1, int(timeout_s * 1000)))
        started = time.monotonic()
        try:
            values = call(*(inputs[k] for k in feeds), options=options)
        except tf.errors.OpError as err:
            code = status_code(err.error_code)
            if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                log.debug(
                    "model %s version %d: %s stopped at its deadline after %.3fs",
                    self.name,
                    self.version,
                    signature,
                    time.monotonic() - started,
                )
            raise ServingError(err.message, code=code) from err
        return dict(zip(fetches, values, strict=True))

    def _callable(self, signature: str, feeds: tuple[str, ...], fetches: tuple[str, ...]) -> Callable:
        key = (signature, feeds, fetches)
        call = self._callables.get(key)
        if call is None:
            with self._callables_lock:
                call = self._callables.get(key)
                if call is None:
                    sig = self.signature_defs.signature_def[signature]
                    call = self._session.make_callable(
                        [sig.outputs[k].name for k in fetches],
                        [sig.inputs[k].name for k in feeds],
                        accept_options=True,
                    )
                    self._callables[key] = call
        return call

    def warm_up(self, limits: RequestLimits = RequestLimits()) -> int:
        """Replay assets.extra/tf_serving_warmup_requests (PredictionLog records) like TF Serving, through
        the same checks as a Predict request.

        Raises ServingError naming the record's signature when one fails."""
        path = self.path / WARMUP_FILE
        if not path.exists():
            return 0
        count, start = 0, time.monotonic()
        for record in tf.data.TFRecordDataset(str(path)).as_numpy_iterator():
            log_entry = prediction_log_pb2.PredictionLog.FromString(record)
            if log_entry.WhichOneof("log_type") != "predict_log":
                raise ValueError(f"{path}: only predict_log warmup records are supported")
            request = log_entry.predict_log.request
            signature = request.model_spec.signature_name or "serving_default"
            try:
                sig = self.signature(signature)
                inputs = decode_inputs(sig, request.inputs, limits)
                self.run(signature, inputs, output_fetches(sig, request.output_filter))
            except (ServingError, ValueError) as err:
                raise ServingError(
                    f"warmup request {count + 1} (signature {signature!r}) failed: {err}",
                    code=getattr(err, "code", grpc.StatusCode.INVALID_ARGUMENT),
                ) from err
            count += 1
        log.info(
            "model %s version %d: replayed %d warmup requests in %.2fs",
            self.name,
            self.version,
            count,
            time.monotonic() - start,
        )
        return count


def _session_config() -> config_pb2.ConfigProto:
    """TensorFlow's thread pools as set for this process (``keras-lstm serve``'s TF Serving flags)."""
    return config_pb2.ConfigProto(
        intra_op_parallelism_threads=tf.config.threading.get_intra_op_parallelism_threads(),
        inter_op_parallelism_threads=tf.config.threading.get_inter_op_parallelism_threads(),
    )
