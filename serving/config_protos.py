"""The TF Serving config messages, for reading the same text files the container reads.

`ModelServerConfig` comes from tensorflow-serving-api. `BatchingParameters` and
`MonitoringConfig` are defined in TF Serving's repository
(tensorflow_serving/servables/tensorflow/session_bundle_config.proto and
tensorflow_serving/config/monitoring_config.proto) but the pip package does not ship
them, so when they cannot be imported they are rebuilt here from the same field names,
types and numbers, in a private descriptor pool (so they never clash with the real ones).
Text files that parse here parse in tensorflow_model_server.
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

from google.protobuf import descriptor_pb2, descriptor_pool, message, message_factory, text_format, wrappers_pb2
from tensorflow_serving.config.model_server_config_pb2 import ModelServerConfig

__all__ = ["BatchingParameters", "ModelServerConfig", "MonitoringConfig", "PrometheusConfig", "parse_text_file"]

_F = descriptor_pb2.FieldDescriptorProto
_WRAPPERS = "google/protobuf/wrappers.proto"


def _field(name: str, number: int, kind: _F.Type.ValueType, type_name: str = "", repeated: bool = False) -> _F:
    label = _F.LABEL_REPEATED if repeated else _F.LABEL_OPTIONAL
    field = _F(name=name, number=number, type=kind, label=label)
    if type_name:
        field.type_name = type_name
    return field


def _build() -> tuple[type[message.Message], type[message.Message], type[message.Message]]:
    pool = descriptor_pool.DescriptorPool()
    wrappers = descriptor_pb2.FileDescriptorProto()
    wrappers_pb2.DESCRIPTOR.CopyToProto(wrappers)
    pool.Add(wrappers)

    msg, i64, string = _F.TYPE_MESSAGE, ".google.protobuf.Int64Value", ".google.protobuf.StringValue"
    batching = descriptor_pb2.FileDescriptorProto(
        name="tensorflow_serving/servables/tensorflow/session_bundle_config.proto",
        package="tensorflow.serving",
        syntax="proto3",
        dependency=[_WRAPPERS],
    )
    batching.message_type.add(
        name="BatchingParameters",
        field=[
            _field("max_batch_size", 1, msg, i64),
            _field("batch_timeout_micros", 2, msg, i64),
            _field("max_enqueued_batches", 3, msg, i64),
            _field("num_batch_threads", 4, msg, i64),
            _field("thread_pool_name", 5, msg, string),
            _field("allowed_batch_sizes", 6, _F.TYPE_INT64, repeated=True),
            _field("pad_variable_length_inputs", 7, _F.TYPE_BOOL),
        ],
    )
    pool.Add(batching)

    monitoring = descriptor_pb2.FileDescriptorProto(
        name="tensorflow_serving/config/monitoring_config.proto",
        package="tensorflow.serving",
        syntax="proto3",
    )
    monitoring.message_type.add(
        name="PrometheusConfig",
        field=[
            _field("enable", 1, _F.TYPE_BOOL),
            _field("path", 2, _F.TYPE_STRING),
        ],
    )
    monitoring.message_type.add(
        name="MonitoringConfig",
        field=[
            _field("prometheus_config", 1, msg, ".tensorflow.serving.PrometheusConfig"),
        ],
    )
    pool.Add(monitoring)

    def cls(name: str) -> type[message.Message]:
        return message_factory.GetMessageClass(pool.FindMessageTypeByName(name))

    return (
        cls("tensorflow.serving.BatchingParameters"),
        cls("tensorflow.serving.MonitoringConfig"),
        cls("tensorflow.serving.PrometheusConfig"),
    )


try:  # a future tensorflow-serving-api may ship them
    from tensorflow_serving.config.monitoring_config_pb2 import MonitoringConfig, PrometheusConfig
    from tensorflow_serving.servables.tensorflow.session_bundle_config_pb2 import BatchingParameters
except ImportError:
    BatchingParameters, MonitoringConfig, PrometheusConfig = _build()

M = TypeVar("M", bound=message.Message)


def parse_text_file(path: str | Path, message_class: type[M]) -> M:
    """Parse a protobuf text-format file; text_format.ParseError names the line on a typo."""
    return text_format.Parse(Path(path).read_text(), message_class())
