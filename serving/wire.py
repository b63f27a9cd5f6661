"""The client's wire format: TF Serving's and TensorFlow's own messages, without TensorFlow.

The descriptors are TF Serving's and TensorFlow's, byte for byte: clients/python/extract_protos.py copies the
serialized FileDescriptorProtos out of the installed tensorflow-serving-api into serving/wire_descriptors.py
(tests/test_serving_wire.py checks them field by field against that package). They are loaded here into a
descriptor pool of the client's own, not protobuf's default pool, so a process that also imports TensorFlow
(a notebook, the server) holds two independent copies that cannot clash, in either import order and whatever
TensorFlow version it has. The messages are the same on the wire; the Python classes differ, so a message
crosses between the two by bytes (`SerializeToString` / `FromString`), or, for tensors, by
`serving.tensors.to_proto(array, into=...)`.

    from serving import wire
    request = wire.PredictRequest(model_spec=wire.ModelSpec(name="adding"))
    wire.DataType.DT_FLOAT == 1
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

from google.protobuf import any_pb2, descriptor_pool, message, message_factory, wrappers_pb2

from serving.wire_descriptors import FILES

__all__ = [
    "GET_MODEL_METADATA",
    "GET_MODEL_STATUS",
    "POOL",
    "PREDICT",
    "DataType",
    "GetModelMetadataRequest",
    "GetModelMetadataResponse",
    "GetModelStatusRequest",
    "GetModelStatusResponse",
    "Method",
    "ModelSpec",
    "ModelVersionStatus",
    "PredictRequest",
    "PredictResponse",
    "SignatureDef",
    "SignatureDefMap",
    "TensorInfo",
    "TensorProto",
    "message_class",
]

POOL = descriptor_pool.DescriptorPool()
for _blob in (any_pb2.DESCRIPTOR.serialized_pb, wrappers_pb2.DESCRIPTOR.serialized_pb, *FILES.values()):
    POOL.AddSerializedFile(_blob)


def message_class(full_name: str) -> type[message.Message]:
    """The class of a message in this pool, e.g. message_class("tensorflow.TensorProto")."""
    return message_factory.GetMessageClass(POOL.FindMessageTypeByName(full_name))


if TYPE_CHECKING:
    # The classes below are built at run time from the descriptors, so a type checker cannot see their fields
    # or DataType's members: to it each is Any, as a value and as an annotation alike.
    TensorProto: TypeAlias = Any
    ModelSpec: TypeAlias = Any
    PredictRequest: TypeAlias = Any
    PredictResponse: TypeAlias = Any
    GetModelMetadataRequest: TypeAlias = Any
    GetModelMetadataResponse: TypeAlias = Any
    SignatureDefMap: TypeAlias = Any
    SignatureDef: TypeAlias = Any
    TensorInfo: TypeAlias = Any
    GetModelStatusRequest: TypeAlias = Any
    GetModelStatusResponse: TypeAlias = Any
    ModelVersionStatus: TypeAlias = Any
    DataType: TypeAlias = Any
else:
    TensorProto = message_class("tensorflow.TensorProto")
    ModelSpec = message_class("tensorflow.serving.ModelSpec")
    PredictRequest = message_class("tensorflow.serving.PredictRequest")
    PredictResponse = message_class("tensorflow.serving.PredictResponse")
    GetModelMetadataRequest = message_class("tensorflow.serving.GetModelMetadataRequest")
    GetModelMetadataResponse = message_class("tensorflow.serving.GetModelMetadataResponse")
    SignatureDefMap = message_class("tensorflow.serving.SignatureDefMap")
    SignatureDef = message_class("tensorflow.SignatureDef")
    TensorInfo = message_class("tensorflow.TensorInfo")
    GetModelStatusRequest = message_class("tensorflow.serving.GetModelStatusRequest")
    GetModelStatusResponse = message_class("tensorflow.serving.GetModelStatusResponse")
    ModelVersionStatus = message_class("tensorflow.serving.ModelVersionStatus")

    # tensorflow.DataType as a Python enum, built from its descriptor: DataType.DT_FLOAT == 1, DataType(1).name.
    DataType = enum.IntEnum(
        "DataType", [(v.name, v.number) for v in POOL.FindEnumTypeByName("tensorflow.DataType").values]
    )


@dataclass(frozen=True)
class Method:
    """One unary RPC: its gRPC path and its request and response classes."""

    path: str  # "/tensorflow.serving.PredictionService/Predict"
    request: type[message.Message]
    response: type[message.Message]

    @classmethod
    def of(cls, service: str, name: str) -> Method:
        method = POOL.FindServiceByName(service).methods_by_name[name]
        return cls(
            path=f"/{service}/{method.name}",
            request=message_factory.GetMessageClass(method.input_type),
            response=message_factory.GetMessageClass(method.output_type),
        )


PREDICT = Method.of("tensorflow.serving.PredictionService", "Predict")
GET_MODEL_METADATA = Method.of("tensorflow.serving.PredictionService", "GetModelMetadata")
GET_MODEL_STATUS = Method.of("tensorflow.serving.ModelService", "GetModelStatus")
