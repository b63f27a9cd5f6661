"""``assets.extra/tf_serving_warmup_requests``: requests TF Serving replays when it loads a version,
so that the first real request does not pay for graph initialisation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

from keras_lstm.export.plan import ExportPlan
from serving.servable import WARMUP_FILE  # where TF Serving, and so the local server, reads them

__all__ = ["WARMUP_FILE", "warmup_requests", "write_warmup"]


def _zeros(shape, dtype: str) -> tf.Tensor:
    return tf.make_tensor_proto(np.zeros(shape, dtype=dtype))


def warmup_requests(plan: ExportPlan, name: str, signatures) -> list[predict_pb2.PredictRequest]:
    """One small request (batch 1, two steps, or the model's fixed length) per signature in ``signatures``:
    TF Serving replays them when it loads the version, and the export replays them on the session path
    before publishing."""
    time = plan.input_shape[1] or 2
    features = tuple(plan.input_shape[2:])
    dtype = plan.input_dtype
    inputs = {
        "serving_default": {"sequences": _zeros((1, time, *features), dtype)},
        "padded": {
            "sequences": _zeros((1, time, *features), dtype),
            "lengths": tf.make_tensor_proto(np.full((1,), time, np.int32)),
        },
        "step": {
            "x": _zeros((1, *features), dtype),
            "h": _zeros((1, sum(plan.h_widths)), "float32"),
            "c": _zeros((1, sum(plan.c_widths)), "float32"),
        },
        "init_state": {"batch_size": tf.make_tensor_proto(np.int32(1))},
    }
    requests = []
    for signature in signatures:
        request = predict_pb2.PredictRequest(model_spec=model_pb2.ModelSpec(name=name, signature_name=signature))
        for key, proto in inputs[signature].items():
            request.inputs[key].CopyFrom(proto)
        requests.append(request)
    return requests


def write_warmup(version_dir: Path, requests: list[predict_pb2.PredictRequest]) -> Path:
    """Write ``requests`` as a TFRecord of PredictionLog under ``version_dir``."""
    path = version_dir / WARMUP_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for request in requests:
            log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())
    return path
