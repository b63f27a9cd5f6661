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
zeros), more elements than ``max_elements``, a sequence longer than ``max_sequence_length``, and an
``init_state`` batch whose state would exceed ``max_elements``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import grpc
import numpy as np

from serving import tensors
from serving.errors import BadRequestError, clip
from serving.requests import Signature, check_batch, check_names, check_tensor

__all__ = ["RequestLimits", "model_spec_of", "decode_inputs", "output_fetches",
           "DEFAULT_MAX_ELEMENTS", "DEFAULT_MAX_SEQUENCE_LENGTH"]

_INVALID = grpc.StatusCode.INVALID_ARGUMENT
# 2**24 elements: what a 64 MiB message (the default --max-message-bytes) holds as float32.
DEFAULT_MAX_ELEMENTS = 1 << 24
# 100,000 steps: a full LSTM pass over one such sequence takes about a second on one core.
DEFAULT_MAX_SEQUENCE_LENGTH = 100_000
# A rank-0 integer input of this name is a number of rows the signature's outputs will hold (init_state).
BATCH_SIZE_INPUT = "batch_size"


@dataclass(frozen=True)
class RequestLimits:
    """What one request may make the server hold (``keras-lstm serve --max-request-elements``,
    ``--max-sequence-length``)."""

    max_elements: int = DEFAULT_MAX_ELEMENTS  # summed over a request's inputs, fill-outs included
    max_sequence_length: int = DEFAULT_MAX_SEQUENCE_LENGTH  # dimension 1 of an input shaped [?, ?, ...]

    def __post_init__(self) -> None:
        if self.max_elements < 1 or self.max_sequence_length < 1:
            raise ValueError(f"request limits must be >= 1: {self}")


def model_spec_of(request: object):  # -> model_pb2.ModelSpec
    """The request's ModelSpec; INVALID_ARGUMENT when it has none (an empty body, say)."""
    if not request.HasField("model_spec"):
        raise BadRequestError("Missing ModelSpec", code=_INVALID)
    return request.model_spec


def decode_inputs(signature: Signature, protos: Mapping[str, object], limits: RequestLimits) -> dict[str, np.ndarray]:
    """The request's input TensorProtos as arrays, once every claim in them has been checked.

    Raises BadRequestError: INVALID_ARGUMENT naming the input for wrong names, a shape TensorFlow
    refuses, a dtype / rank / fixed dimension the signature does not take, a sequence or element count
    over the limits, values that disagree with the shape, or values out of their dtype's range;
    RESOURCE_EXHAUSTED for an ``init_state`` batch whose state would exceed ``max_elements``.
    """
    check_names(signature, protos)
    shapes: dict[str, tuple[int, ...]] = {}
    total = 0
    for name in sorted(protos):
        proto, info = protos[name], signature.inputs[name]
        try:
            shape = tensors.claimed_shape(proto)
        except ValueError as err:  # TF Serving: "tensor parsing error: <alias>"
            raise BadRequestError(f"tensor parsing error: {clip(name)} ({err})", code=_INVALID) from None
        check_tensor(name, info, int(proto.dtype), shape)
        if info.shape is not None and len(info.shape) >= 2 and info.shape[1] is None \
                and shape[1] > limits.max_sequence_length:
            raise BadRequestError(
                f'input "{clip(name)}": sequence length {shape[1]} is over the server\'s maximum of '
                f"{limits.max_sequence_length} steps (--max-sequence-length)", code=_INVALID)
        elements = math.prod(shape)
        total += elements
        if total > limits.max_elements:
            raise BadRequestError(
                f'input "{clip(name)}": shape {clip(list(shape))} brings the request to {total} elements, over the '
                f"server's limit of {limits.max_elements} (--max-request-elements)", code=_INVALID)
        _check_values_sent(name, proto, shape, elements)
        shapes[name] = shape
    check_batch(signature, shapes)
    arrays = {}
    for name in sorted(protos):
        try:
            arrays[name] = tensors.to_array(protos[name])
        except ValueError as err:
            raise BadRequestError(f'input "{clip(name)}": {err}', code=_INVALID) from None
    _check_claimed_rows(signature, arrays, limits)
    return arrays


def _check_values_sent(name: str, proto: object, shape: tuple[int, ...], elements: int) -> None:
    """`tensor_content` must hold the shape exactly; a typed field may hold one value or more (TF's fill
    rule), but none only for a tensor of at most one element."""
    sent = tensors.values_sent(proto)
    if proto.tensor_content:
        itemsize = tensors.numpy_dtype(proto.dtype).itemsize
        if len(proto.tensor_content) != elements * itemsize:
            raise BadRequestError(
                f'input "{clip(name)}": tensor_content holds {len(proto.tensor_content)} bytes, shape '
                f"{clip(list(shape))} needs {elements * itemsize}", code=_INVALID)
    elif sent == 0 and elements > 1:
        raise BadRequestError(
            f'input "{clip(name)}": shape {clip(list(shape))} claims {elements} elements but no values were sent',
            code=_INVALID)


def _check_claimed_rows(signature: Signature, arrays: Mapping[str, np.ndarray], limits: RequestLimits) -> None:
    """A ``batch_size`` input asks for that many rows of every output: bound them by ``max_elements``."""
    value = arrays.get(BATCH_SIZE_INPUT)
    if value is None or value.ndim != 0 or value.dtype.kind not in "iu":
        return
    row = sum(math.prod(d or 1 for d in (info.shape or ())[1:]) for info in signature.outputs.values())
    if int(value) * max(row, 1) > limits.max_elements:
        raise BadRequestError(
            f'input "{BATCH_SIZE_INPUT}": {int(value)} rows of {row} state elements each are over the '
            f"server's limit of {limits.max_elements} elements (--max-request-elements)",
            code=grpc.StatusCode.RESOURCE_EXHAUSTED)


def output_fetches(signature: Signature, output_filter: Sequence[str]) -> tuple[str, ...]:
    """The outputs to fetch: ``output_filter`` in its order, or every output sorted. TF Serving's wording
    for an unknown alias and for one named twice."""
    seen: set[str] = set()
    for alias in output_filter:
        if alias not in signature.outputs:
            raise BadRequestError(
                f"output tensor alias not found in signature: {clip(alias)} Outputs expected to be in the "
                f"set {{{','.join(sorted(signature.outputs))}}}.", code=_INVALID)
        if alias in seen:
            raise BadRequestError(f"duplicate output tensor alias: {clip(alias)}", code=_INVALID)
        seen.add(alias)
    return tuple(output_filter) or tuple(sorted(signature.outputs))
