"""Pure functions: NumPy + model spec -> request protos, response protos -> NumPy.

Nothing here touches the network, so every function is unit-testable on its own. The
client builds its requests here and checks inputs against the model's metadata with
`check_inputs`; the local server runs the very same check, so the two cannot disagree.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import grpc
import numpy as np

from serving import tensors, wire
from serving.errors import BadRequestError, clip, status_code

__all__ = [
    "DEFAULT_SIGNATURE",
    "PADDED_SIGNATURE",
    "ModelMetadata",
    "Signature",
    "TensorInfo",
    "VersionStatus",
    "check_batch",
    "check_inputs",
    "check_names",
    "check_tensor",
    "metadata_request",
    "model_spec",
    "parse_metadata",
    "parse_predict",
    "parse_status",
    "predict_request",
    "sequence_inputs",
    "status_request",
]

DEFAULT_SIGNATURE = "serving_default"
PADDED_SIGNATURE = "padded"
_INVALID = grpc.StatusCode.INVALID_ARGUMENT


@dataclass(frozen=True)
class TensorInfo:
    """One signature input or output: DataType enum and shape (None: unknown dim / rank)."""

    dtype: int
    shape: tuple[int | None, ...] | None

    @classmethod
    def from_proto(cls, info: wire.TensorInfo) -> TensorInfo:
        shape_proto = info.tensor_shape
        shape = (
            None if shape_proto.unknown_rank else tuple(None if d.size < 0 else int(d.size) for d in shape_proto.dim)
        )
        return cls(dtype=int(info.dtype), shape=shape)

    def describe(self) -> str:
        shape = "?" if self.shape is None else "[" + ", ".join("?" if d is None else str(d) for d in self.shape) + "]"
        return f"{tensors.dtype_name(self.dtype)}{shape}"


@dataclass(frozen=True)
class Signature:
    """A SignatureDef's inputs and outputs by alias."""

    name: str
    inputs: dict[str, TensorInfo]
    outputs: dict[str, TensorInfo]

    @classmethod
    def from_proto(cls, name: str, sig: wire.SignatureDef) -> Signature:
        return cls(
            name=name,
            inputs={k: TensorInfo.from_proto(v) for k, v in sig.inputs.items()},
            outputs={k: TensorInfo.from_proto(v) for k, v in sig.outputs.items()},
        )


@dataclass(frozen=True)
class ModelMetadata:
    """What GetModelMetadata says about one model version."""

    name: str
    version: int
    signatures: dict[str, Signature]


@dataclass(frozen=True)
class VersionStatus:
    """One entry of GetModelStatus: a version, its state name, and its load error if any."""

    version: int
    state: str  # START, LOADING, AVAILABLE, UNLOADING, END
    error_code: grpc.StatusCode
    error_message: str


def model_spec(
    name: str, *, version: int | None = None, version_label: str | None = None, signature: str | None = None
) -> wire.ModelSpec:
    """A ModelSpec; `version` and `version_label` are mutually exclusive (None: latest)."""
    if version is not None and version_label is not None:
        raise ValueError("pass version= or version_label=, not both")
    spec = wire.ModelSpec(name=name)
    if version is not None:
        spec.version.value = int(version)
    if version_label is not None:
        spec.version_label = version_label
    if signature:
        spec.signature_name = signature
    return spec


def sequence_inputs(sequences: np.ndarray, lengths: np.ndarray | None) -> tuple[str, dict[str, np.ndarray]]:
    """Map predict()'s arguments to a signature and its inputs.

    Without lengths: `serving_default` with `sequences`; with lengths: `padded` with
    `sequences` and `lengths`. The values are passed on as they were given: the client converts
    them to the signature's dtypes by one rule (`serving.conform`) before checking and sending.
    """
    if lengths is None:
        return DEFAULT_SIGNATURE, {"sequences": sequences}
    return PADDED_SIGNATURE, {"sequences": sequences, "lengths": lengths}


def predict_request(
    model: str,
    inputs: Mapping[str, np.ndarray],
    *,
    signature: str = DEFAULT_SIGNATURE,
    version: int | None = None,
    version_label: str | None = None,
    output_filter: Sequence[str] = (),
) -> wire.PredictRequest:
    request = wire.PredictRequest(
        model_spec=model_spec(model, version=version, version_label=version_label, signature=signature),
        output_filter=list(output_filter),
    )
    for name, array in inputs.items():
        tensors.to_proto(array, into=request.inputs[name])
    return request


def metadata_request(
    model: str, *, version: int | None = None, version_label: str | None = None
) -> wire.GetModelMetadataRequest:
    return wire.GetModelMetadataRequest(
        model_spec=model_spec(model, version=version, version_label=version_label),
        metadata_field=["signature_def"],
    )


def status_request(
    model: str, *, version: int | None = None, version_label: str | None = None
) -> wire.GetModelStatusRequest:
    return wire.GetModelStatusRequest(model_spec=model_spec(model, version=version, version_label=version_label))


def parse_predict(response: wire.PredictResponse) -> dict[str, np.ndarray]:
    return {name: tensors.to_array(proto) for name, proto in response.outputs.items()}


def parse_metadata(response: wire.GetModelMetadataResponse) -> ModelMetadata:
    sig_map = wire.SignatureDefMap()
    if "signature_def" in response.metadata:
        response.metadata["signature_def"].Unpack(sig_map)
    signatures = {
        name: Signature.from_proto(name, sig)
        for name, sig in sig_map.signature_def.items()
        if not name.startswith("__")  # __saved_model_init_op is not callable
    }
    return ModelMetadata(
        name=response.model_spec.name, version=int(response.model_spec.version.value), signatures=signatures
    )


def parse_status(response: wire.GetModelStatusResponse) -> list[VersionStatus]:
    states = wire.ModelVersionStatus.DESCRIPTOR.enum_types_by_name["State"].values_by_number
    return [
        VersionStatus(
            version=int(v.version),
            state=states[v.state].name if v.state in states else str(v.state),
            error_code=status_code(v.status.error_code),
            error_message=v.status.error_message,
        )
        for v in response.model_version_status
    ]


def check_inputs(signature: Signature, inputs: Mapping[str, np.ndarray]) -> None:
    """Raise BadRequestError (INVALID_ARGUMENT, message naming the input) on any mismatch.

    Checks names, dtype, rank, fixed dimensions (the feature size), and that batched inputs
    share one batch size. An empty batch (dimension 0 is 0) passes, as TF Serving answers it
    with empty outputs.
    """
    check_names(signature, inputs)
    for name in sorted(inputs):
        array = np.asarray(inputs[name])
        try:
            sent_dtype = tensors.dtype_of(array)
        except ValueError:
            sent_dtype = -1
        check_tensor(name, signature.inputs[name], sent_dtype, array.shape, dtype_label=str(array.dtype))
    check_batch(signature, {name: np.shape(value) for name, value in inputs.items()})


def check_names(signature: Signature, names: Iterable[str]) -> None:
    """The inputs sent must be exactly the signature's (TF Serving's wording; echoed names cut short)."""
    expected, sent = set(signature.inputs), set(names)
    if expected != sent:
        raise BadRequestError(
            f"input size does not match signature: {len(sent)}!={len(expected)} "
            f"len({_names(sent)}) != len({_names(expected)}). "
            f"Sent extra: {_names(sent - expected)}. Missing but required: {_names(expected - sent)}.",
            code=_INVALID,
        )


def check_tensor(name: str, info: TensorInfo, dtype: int, shape: Sequence[int], *, dtype_label: str = "") -> None:
    """One input's DataType enum and shape against its signature entry: dtype, rank, fixed dimensions."""
    got = list(shape)
    if dtype != info.dtype:
        raise BadRequestError(
            f'input "{clip(name)}": expects {tensors.dtype_name(info.dtype)} but '
            f"{dtype_label or tensors.dtype_name(dtype)} is provided",
            code=_INVALID,
        )
    if info.shape is None:
        return
    if len(got) != len(info.shape):
        raise BadRequestError(
            f'input "{clip(name)}": expects rank {len(info.shape)} ({info.describe()}) but got shape {clip(got)}',
            code=_INVALID,
        )
    for axis, (want, have) in enumerate(zip(info.shape, got, strict=True)):
        if want is not None and want != have:
            what = "feature size" if axis == len(info.shape) - 1 and axis > 0 else f"dimension {axis}"
            raise BadRequestError(
                f'input "{clip(name)}": {what} must be {want} ({info.describe()}) but got shape {clip(got)}',
                code=_INVALID,
            )


def check_batch(signature: Signature, shapes: Mapping[str, Sequence[int]]) -> None:
    """Inputs batched along an unknown dimension 0 must agree on its size."""
    batch: tuple[str, int] | None = None
    for name in sorted(shapes):
        info, shape = signature.inputs[name], shapes[name]
        if not (info.shape and info.shape[0] is None and len(shape) >= 1):
            continue
        if batch is not None and batch[1] != shape[0]:
            raise BadRequestError(
                f'input "{clip(name)}": batch size {shape[0]} differs from {batch[1]} of input "{clip(batch[0])}"; '
                "input tensors must have equal 0th-dimension size",
                code=_INVALID,
            )
        batch = batch or (name, shape[0])


def _names(names: set[str]) -> str:
    return "{" + ",".join(clip(n) for n in sorted(names)[:16]) + (",..." if len(names) > 16 else "") + "}"
