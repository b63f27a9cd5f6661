"""The server's request path before any model runs: what a request may claim, checked on the protos.

Every RPC of the local server goes through here, so that a new RPC inherits the checks:

- ``model_spec_of``: a request without a ModelSpec is INVALID_ARGUMENT "Missing ModelSpec", as in TF
  Serving (predict_impl.cc, get_model_metadata_impl.cc, get_model_status_impl.cc).
- ``decode_inputs``: the inputs' names, dtypes and shapes against the signature, the elements claimed
  against ``RequestLimits``, and the values claimed against the values actually sent, all on the
  TensorProtos, *before* any array is built; only then the arrays. A 20-byte request claiming 2**40
  floats is refused without allocating them.
- ``output_fetches``: the output_filter, with TF Serving's wording for unknown and duplicate aliases.

Where the local server refuses what TF Serving would accept, it is to bound the memory and time one
request can take: an absent value list for a tensor of more than one element (TF Serving fills it with
zeros), more elements than ``max_elements``, a sequence longer than ``max_sequence_length``, and an answer
(an ``init_state`` batch's state, or any batch's outputs) that would exceed ``max_elements`` or, at 4 bytes an
element, ``max_answer_bytes``: refused before the model runs, where gRPC would refuse it at its send limit after.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
import numpy as np

from serving import tensors, wire
from serving.errors import BadRequestError, clip
from serving.requests import Signature, check_batch, check_names, check_tensor

__all__ = [
    "DEFAULT_MAX_ANSWER_BYTES",
    "DEFAULT_MAX_ELEMENTS",
    "DEFAULT_MAX_SEQUENCE_LENGTH",
    "RequestLimits",
    "check_limits",
    "decode_inputs",
    "model_spec_of",
    "output_fetches",
]

_INVALID = grpc.StatusCode.INVALID_ARGUMENT
# 2**24 elements: what a 64 MiB message (the default --max-message-bytes) holds as float32.
DEFAULT_MAX_ELEMENTS = 1 << 24
# 100,000 steps: a full LSTM pass over one such sequence takes about a second on one core.
DEFAULT_MAX_SEQUENCE_LENGTH = 100_000
# 64 MiB: TF Serving's default gRPC message size, both ways.
DEFAULT_MAX_ANSWER_BYTES = 64 << 20
# A rank-0 integer input of this name is a number of rows the signature's outputs will hold (init_state).
BATCH_SIZE_INPUT = "batch_size"


@dataclass(frozen=True)
class RequestLimits:
    """What one request may make the server hold (``keras-lstm serve --max-request-elements``,
    ``--max-sequence-length``)."""

    max_elements: int = DEFAULT_MAX_ELEMENTS  # summed over a request's inputs, fill-outs included
    max_sequence_length: int = DEFAULT_MAX_SEQUENCE_LENGTH  # dimension 1 of an input shaped [?, ?, ...]
    max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES  # the server sets it to --max-message-bytes (gRPC's send limit)

    def __post_init__(self) -> None:
        if self.max_elements < 1 or self.max_sequence_length < 1 or self.max_answer_bytes < 1:
            raise ValueError(f"request limits must be >= 1: {self}")


def model_spec_of(request: Any) -> wire.ModelSpec:
    """The ModelSpec of a request (of any of the RPCs, either message class); INVALID_ARGUMENT when it has none
    (an empty body, say)."""
    if not request.HasField("model_spec"):
        raise BadRequestError("Missing ModelSpec", code=_INVALID)
    return request.model_spec


def decode_inputs(
    signature: Signature, protos: Mapping[str, wire.TensorProto], limits: RequestLimits
) -> dict[str, np.ndarray]:
    """The request's input TensorProtos as arrays, once every claim in them has been checked.

    Raises BadRequestError: INVALID_ARGUMENT naming the input for wrong names, a shape TensorFlow
    refuses, a dtype / rank / fixed dimension the signature does not take, a sequence or element count
    over the limits, values that disagree with the shape, or values out of their dtype's range;
    RESOURCE_EXHAUSTED for an answer that would exceed ``max_elements`` or ``max_answer_bytes``.
    """
    check_names(signature, protos)
    shapes: dict[str, tuple[int, ...]] = {}
    for name in sorted(protos):
        proto, info = protos[name], signature.inputs[name]
        try:
            shape = tensors.claimed_shape(proto)
        except ValueError as err:  # TF Serving: "tensor parsing error: <alias>"
            raise BadRequestError(f"tensor parsing error: {clip(name)} ({err})", code=_INVALID) from None
        check_tensor(name, info, int(proto.dtype), shape)
        shapes[name] = shape
    check_limits(signature, shapes, limits)
    for name in sorted(protos):
        _check_values_sent(name, protos[name], shapes[name], math.prod(shapes[name]))
    check_batch(signature, shapes)
    arrays = {}
    for name in sorted(protos):
        try:
            arrays[name] = tensors.to_array(protos[name])
        except ValueError as err:
            raise BadRequestError(f'input "{clip(name)}": {err}', code=_INVALID) from None
    _check_answer(signature, arrays, limits)
    return arrays


def check_limits(signature: Signature, shapes: Mapping[str, Sequence[int]], limits: RequestLimits) -> None:
    """The sequence length and the elements that the inputs' shapes claim, against the limits (INVALID_ARGUMENT);
    the REST API calls it on the shapes of the JSON lists, before it builds any tensor."""
    total = 0
    for name in sorted(shapes):
        shape, info = shapes[name], signature.inputs.get(name)
        if (
            info is not None
            and info.shape is not None
            and len(info.shape) >= 2
            and info.shape[1] is None
            and len(shape) >= 2
            and shape[1] > limits.max_sequence_length
        ):
            raise BadRequestError(
                f'input "{clip(name)}": sequence length {shape[1]} is over the server\'s maximum of '
                f"{limits.max_sequence_length} steps (--max-sequence-length)",
                code=_INVALID,
            )
        total += math.prod(shape)
        if total > limits.max_elements:
            raise BadRequestError(
                f'input "{clip(name)}": shape {clip(list(shape))} brings the request to {total} elements, over the '
                f"server's limit of {limits.max_elements} (--max-request-elements)",
                code=_INVALID,
            )


def _check_values_sent(name: str, proto: wire.TensorProto, shape: tuple[int, ...], elements: int) -> None:
    """`tensor_content` must hold the shape exactly; a typed field may hold one value or more (TF's fill
    rule), but none only for a tensor of at most one element."""
    sent = tensors.values_sent(proto)
    dtype = tensors.numpy_dtype(proto.dtype)  # None for strings, which travel in string_val
    if proto.tensor_content and dtype is not None:
        itemsize = dtype.itemsize
        if len(proto.tensor_content) != elements * itemsize:
            raise BadRequestError(
                f'input "{clip(name)}": tensor_content holds {len(proto.tensor_content)} bytes, shape '
                f"{clip(list(shape))} needs {elements * itemsize}",
                code=_INVALID,
            )
    elif sent == 0 and elements > 1:
        raise BadRequestError(
            f'input "{clip(name)}": shape {clip(list(shape))} claims {elements} elements but no values were sent',
            code=_INVALID,
        )


def _check_answer(signature: Signature, arrays: Mapping[str, np.ndarray], limits: RequestLimits) -> None:
    """Bound the answer before the model runs: its rows (a ``batch_size`` input's value, else the inputs' batch)
    times the elements of one row of every output (a dimension the signature leaves open counts as the inputs'
    largest at that axis) must be within ``max_elements``, and at 4 bytes an element (a float32 on gRPC, the
    shortest JSON value and its comma on REST) within ``max_answer_bytes``, the gRPC send limit. Over either:
    RESOURCE_EXHAUSTED, the code gRPC gives an answer over its send limit."""
    value = arrays.get(BATCH_SIZE_INPUT)
    if value is not None and value.ndim == 0 and value.dtype.kind in "iu":
        rows, what = int(value), f'input "{BATCH_SIZE_INPUT}": {int(value)} rows'
    else:
        batched = [
            a.shape[0] for n, a in arrays.items() if a.ndim >= 1 and (signature.inputs[n].shape or (1,))[0] is None
        ]
        if not batched:
            return
        rows, what = max(batched), f"a batch of {max(batched)} rows"
    row = 0
    for info in signature.outputs.values():
        dims = (info.shape or (None,))[1:]
        row += math.prod(d if d is not None else _widest(arrays, axis) for axis, d in enumerate(dims, 1))
    elements = rows * max(row, 1)
    if elements > limits.max_elements or 4 * elements > limits.max_answer_bytes:
        raise BadRequestError(
            f"{what} of {row} output elements each are over the server's limit of {limits.max_elements} "
            f"elements or {limits.max_answer_bytes} bytes an answer (--max-request-elements, --max-message-bytes)",
            code=grpc.StatusCode.RESOURCE_EXHAUSTED,
        )


def _widest(arrays: Mapping[str, np.ndarray], axis: int) -> int:
    return max((a.shape[axis] for a in arrays.values() if a.ndim > axis), default=1)


def output_fetches(signature: Signature, output_filter: Sequence[str]) -> tuple[str, ...]:
    """The outputs to fetch: ``output_filter`` in its order, or every output sorted. TF Serving's wording
    for an unknown alias and for one named twice."""
    seen: set[str] = set()
    for alias in output_filter:
        if alias not in signature.outputs:
            raise BadRequestError(
                f"output tensor alias not found in signature: {clip(alias)} Outputs expected to be in the "
                f"set {{{','.join(sorted(signature.outputs))}}}.",
                code=_INVALID,
            )
        if alias in seen:
            raise BadRequestError(f"duplicate output tensor alias: {clip(alias)}", code=_INVALID)
        seen.add(alias)
    return tuple(output_filter) or tuple(sorted(signature.outputs))
