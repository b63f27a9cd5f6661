"""JSON <-> TensorProto for TF Serving's REST API, in the one place (TF Serving's util/json_tensor.cc).

``fill_predict_request`` turns a REST predict body into the inputs of a ``PredictRequest``, the message the gRPC
API carries, so that the server checks and runs it on the gRPC side's path (serving.service). Both of TF
Serving's request forms:

- row (``"instances"``): a list with one entry per batch row, each the value of the single input or an object
  with one key per input; every row of an input has the same shape; the tensor is [rows, *row shape].
- columnar (``"inputs"``): the value of the single input, or an object with one key per input, each a whole
  tensor batch included.

``"signature_name"`` picks the signature (default ``serving_default``); its inputs' dtypes say how to read the
JSON numbers. What this module refuses is what TF Serving refuses, in its words where they name the problem: a
body that is not a JSON object, both or neither of the two keys, lists that are not rectangular or nested deeper
than their first element, values of the wrong JSON type, numbers the dtype cannot hold without loss (an int32 of
2**31, a float32 of 1e39 or the integer 2**24 + 1), numbers too big for a double (``1e400``), bytes that are not
UTF-8 and lone surrogates (``"\\ud800"``), and ``{"b64": ...}`` values anywhere but a string input. An object
whose keys repeat keeps the first, as TF Serving's lookups do. The request's size was bounded by the HTTP server
(``--max-message-bytes``) before it was read; its values are counted on the bytes against the element limit
before it is parsed (``_scan``), the shapes of its lists are checked against the element and sequence limits
(``admission.check_limits``) before any TensorProto is filled, and the TensorProtos once more by
``serving.admission`` on the gRPC side's path.

``predict_response_json`` writes the PredictResponse's outputs as TF Serving does: row requests get
``{"predictions": [...]}`` with one entry per row (the value itself for a single output, an object of the
outputs for several); columnar requests get ``{"outputs": value}`` for a single output and ``{"outputs":
{name: value}}`` for several. Floats are written as TF Serving writes them: six significant digits when those
read back as the same float32 (``0.1``), else nine; ``.0`` on whole numbers; ``NaN``, ``Infinity``.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import enum
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from typing import TypeGuard

import grpc
import numpy as np

from serving import tensors, wire
from serving.admission import RequestLimits, check_limits
from serving.errors import BadRequestError, ServingError, UnimplementedError, clip
from serving.requests import Signature
from serving.wire import DataType

__all__ = ["JsonFormat", "error_json", "fill_predict_request", "predict_response_json"]

SIGNATURE_KEY, INSTANCES_KEY, INPUTS_KEY = "signature_name", "instances", "inputs"
B64_KEY, BYTES_SUFFIX = "b64", "_bytes"
MAX_RANK = 254  # TensorShape::MaxDimensions()
_INVALID = grpc.StatusCode.INVALID_ARGUMENT
_F32_MAX = float(np.finfo(np.float32).max)
# The largest integers float32 and float64 hold exactly (TF Serving's IsLosslessDecimal).
_EXACT_INT = {DataType.DT_FLOAT: (1 << 24) - 1, DataType.DT_DOUBLE: (1 << 53) - 1}
# Integer dtypes: the proto field TF Serving fills and the JSON integers it accepts for it.
_INT_FIELDS: dict[int, tuple[str, int, int]] = {
    **dict.fromkeys(
        (DataType.DT_INT32, DataType.DT_INT16, DataType.DT_INT8, DataType.DT_UINT8, DataType.DT_UINT16),
        ("int_val", -(1 << 31), (1 << 31) - 1),
    ),
    DataType.DT_INT64: ("int64_val", -(1 << 63), (1 << 63) - 1),
    DataType.DT_UINT32: ("uint32_val", 0, (1 << 32) - 1),
    DataType.DT_UINT64: ("uint64_val", 0, (1 << 64) - 1),
}


class JsonFormat(enum.Enum):
    """Which form a predict body took, and so which form its answer takes."""

    ROW = "instances"
    COLUMNAR = "inputs"


# A \uD800-\uDFFF escape; the constants json.loads reads (NaN, Infinity, -Infinity), kept as these objects, so that
# an infinity that is none of them came from a number too big for a double (1e400).
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_CONSTANTS = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
_OTHER_VALUES = 64  # values a body may hold besides its inputs' elements: signature_name, keys nobody reads
_NESTING = 1024  # lists a body may hold besides two per value: deep nesting gets its own message (MAX_RANK)


def _bad(message: str) -> BadRequestError:
    return BadRequestError(message, code=_INVALID)


# -- request ----------------------------------------------------------------------------------------------------
def fill_predict_request(
    body: bytes,
    signature_of: Callable[[str], Signature],
    request: wire.PredictRequest,
    limits: RequestLimits = RequestLimits(),
    parsing: Callable[[int], AbstractContextManager] = lambda _: contextlib.nullcontext(),
) -> JsonFormat:
    """Parse a REST predict body into ``request`` (a PredictRequest whose model_spec names the model): its
    ``signature_name`` and its input TensorProtos. ``signature_of(name)`` looks the signature up ("" for the
    default), as TF Serving's handler asks its servable. Raises BadRequestError (INVALID_ARGUMENT) naming the
    key and the value that is wrong; the lookup's own errors (NOT_FOUND, ...) pass through. The body's values
    are counted against ``limits.max_elements`` before it is parsed, and the inputs' shapes checked against
    ``limits`` before any TensorProto is filled. ``parsing(len(body))`` is entered once the body is counted and
    held while it is parsed and the TensorProtos are filled (the REST API's parse budget)."""
    if not body.strip():
        raise _bad("JSON Parse error: The document is empty")
    _scan(body, limits.max_elements)
    with parsing(len(body)):
        return _fill(_parse(body), signature_of, request, limits)


def _fill(
    doc: dict, signature_of: Callable[[str], Signature], request: wire.PredictRequest, limits: RequestLimits
) -> JsonFormat:
    if SIGNATURE_KEY in doc and not isinstance(doc[SIGNATURE_KEY], str):
        raise _bad(
            f"'{SIGNATURE_KEY}' must be a string, got {_show(doc[SIGNATURE_KEY])} ({_json_type(doc[SIGNATURE_KEY])})"
        )
    if doc.get(SIGNATURE_KEY):
        request.model_spec.signature_name = doc[SIGNATURE_KEY]
    signature = signature_of(doc.get(SIGNATURE_KEY) or "")
    if not signature.inputs:
        raise _bad(f"Failed to get input map for signature: {clip(signature.name)} (it takes no inputs)")
    if INSTANCES_KEY in doc and INPUTS_KEY in doc:
        raise _bad(f"expecting only one of '{INPUTS_KEY}' (columnar) or '{INSTANCES_KEY}' (row) keys, got both")
    columns: Mapping[str, tuple[tuple[int, ...], object]]  # {input: (shape, JSON value)}
    if INSTANCES_KEY in doc:
        form, columns = JsonFormat.ROW, _from_instances(doc[INSTANCES_KEY], signature)
    elif INPUTS_KEY in doc:
        form, columns = JsonFormat.COLUMNAR, _from_inputs(doc[INPUTS_KEY], signature)
    else:
        raise _bad(f"Missing '{INPUTS_KEY}' or '{INSTANCES_KEY}' key; got keys {_keys(doc)}")
    check_limits(signature, {name: shape for name, (shape, _) in columns.items()}, limits)
    for name, (shape, value) in columns.items():
        _fill_tensor(request.inputs[name], name, signature.inputs[name].dtype, shape, value)
    return form


def _parse(body: bytes) -> dict:
    try:
        # UTF-8 strictly, a byte-order mark skipped, as TF Serving's RapidJSON stream reads it (json.loads(bytes)
        # would also take UTF-16 and UTF-32, and lone surrogates written as raw bytes, b"\xed\xa0\x80")
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise _bad(f"JSON Parse error: Invalid encoding in string. at offset: {err.start}") from None
    try:
        doc = json.loads(text, object_pairs_hook=_first_wins, parse_constant=_CONSTANTS.__getitem__)
    except json.JSONDecodeError as err:
        raise _bad(f"JSON Parse error: {err.msg} at offset: {err.pos}") from None
    except RecursionError:
        raise _bad("JSON Parse error: lists or objects nested too deeply") from None
    except ValueError as err:  # an integer of more than 4300 digits
        raise _bad(f"JSON Parse error: {clip(err, 200)}") from None
    if "\\u" in text and _SURROGATE_ESCAPE.search(text):
        _check_surrogates(doc)
    if not isinstance(doc, dict):
        raise _bad(
            f"JSON Value: {_show(doc)} Is not object; the body must be a JSON object with "
            f"'{INSTANCES_KEY}' or '{INPUTS_KEY}'"
        )
    return doc


def _scan(body: bytes, max_elements: int) -> None:
    """What the body would cost to parse, counted on its bytes with bytes methods only (a fraction of
    json.loads's time, and no Python object per value), so that a body over the element limit is refused before
    it is parsed.

    Outside its strings, and without blanks, a valid JSON text holds ``1 + commas - empty containers`` values
    that are not lists or objects (every value but a container's first follows a comma); every element of an
    input is one of them. A body with more than ``max_elements`` of them (and a few for values no input reads) is
    refused; so is one with more lists and objects than twice its values and a thousand, which nests lists
    around nothing (json.loads would make a list object for each). Where the body is not valid JSON the counts
    are off only past the first error, and json.loads stops there."""
    unescaped = body.replace(b"\\\\", b"").replace(b'\\"', b"")  # escapes are read left to right, as JSON does
    outside = b"".join(unescaped.split(b'"')[0::2]).translate(None, b" \t\r\n")  # what the strings leave
    values = 1 + outside.count(b",") - outside.count(b"[]") - outside.count(b"{}")
    if values > max_elements + _OTHER_VALUES:
        raise _bad(
            f"the body holds {values} JSON values, over the server's limit of {max_elements} elements "
            "(--max-request-elements)"
        )
    containers = outside.count(b"[") + outside.count(b"{")
    if containers > 2 * max(values, 0) + _NESTING:
        raise _bad(
            f"the body nests {containers} lists or objects around {max(values, 0)} values; a tensor's lists hold values"
        )


def _first_wins(pairs: list[tuple[str, object]]) -> dict:
    """An object whose keys repeat keeps the first value, as TF Serving's lookups (RapidJSON's FindMember) do."""
    out: dict = {}
    for key, value in pairs:
        out.setdefault(key, value)
    return out


def _check_surrogates(doc: object) -> None:
    """A string with a lone surrogate escape (``"\\ud800"``) is refused as RapidJSON refuses it; Python's json
    would keep it, and it cannot be encoded into a protobuf string."""
    stack = [doc]
    while stack:
        value = stack.pop()
        if isinstance(value, list):
            stack.extend(value)
        elif isinstance(value, dict):
            stack.extend(value.values())
            stack.extend(value.keys())
        elif isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise _bad(f"JSON Parse error: The surrogate pair in string is invalid: {_show(value)}") from None


def _from_instances(instances: object, signature: Signature) -> dict[str, tuple[tuple[int, ...], list]]:
    """Row form: {input: (shape, list of rows)}; every row of an input has the first row's shape."""
    if not isinstance(instances, list):
        raise _bad(f"expecting '{INSTANCES_KEY}' to be a list/array, got {_show(instances)} ({_json_type(instances)})")
    if not instances:
        raise _bad(f"No values in '{INSTANCES_KEY}' array")
    names = sorted(signature.inputs)
    named = _is_named(instances[0])
    if not named and len(names) > 1:
        raise _bad(
            f"{INSTANCES_KEY} is a plain list, but signature {clip(signature.name)} takes {len(names)} inputs "
            f"{_keys(names)}: send a list of objects, one key per input"
        )
    if named:
        for i, row in enumerate(instances):
            if not _is_named(row):
                raise _bad(f"Expecting object but got {_json_type(row)} at item {i} of '{INSTANCES_KEY}' list")
            if row.keys() != set(names):
                raise _bad(
                    f"Failed to process element: {i} of '{INSTANCES_KEY}' list. Its keys {_keys(row)} must be "
                    f"equal to the inputs of signature {clip(signature.name)}: {_keys(names)}"
                )
        columns = {name: [row[name] for row in instances] for name in names}
    else:
        for i, row in enumerate(instances):
            if _is_named(row):
                raise _bad(f"Expecting value/list but got object at item {i} of '{INSTANCES_KEY}' list")
        columns = {names[0]: instances}
    out = {}
    for name, rows in columns.items():
        first = _shape_of(name, rows[0])
        for i, row in enumerate(rows):
            if (shape := _shape_of(name, row)) != first:
                raise _bad(
                    f"Failed to process element: {i} of '{INSTANCES_KEY}' list, input \"{clip(name)}\": "
                    f"expecting shape {list(first)} (that of element 0) but got {list(shape)}"
                )
        out[name] = ((len(rows), *first), rows)
    return out


def _from_inputs(inputs: object, signature: Signature) -> dict[str, tuple[tuple[int, ...], object]]:
    """Columnar form: {input: (shape, value)}; keys of the object that are no input are ignored, as in TF Serving."""
    names = sorted(signature.inputs)
    if not _is_named(inputs):
        if len(names) > 1:
            raise _bad(
                f"{INPUTS_KEY} is a plain value/list, but signature {clip(signature.name)} takes {len(names)} "
                f"inputs {_keys(names)}: send an object, one key per input"
            )
        return {names[0]: (_shape_of(names[0], inputs), inputs)}
    out = {}
    for name in names:
        if name not in inputs:
            raise _bad(
                f"Missing named input: {clip(name)} in '{INPUTS_KEY}' object; signature "
                f"{clip(signature.name)} takes {_keys(names)}, got {_keys(inputs)}"
            )
        out[name] = (_shape_of(name, inputs[name]), inputs[name])
    return out


def _shape_of(name: str, value: object) -> tuple[int, ...]:
    """The shape a JSON value claims, read down its first elements (TF Serving's GetDenseTensorShape)."""
    shape = []
    while isinstance(value, list):
        shape.append(len(value))
        if len(shape) > MAX_RANK:
            raise _bad(f'input "{clip(name)}": lists nested deeper than TensorFlow\'s maximum rank {MAX_RANK}')
        if not value:
            break
        value = value[0]
    return tuple(shape)


def _leaves(name: str, value: object, shape: tuple[int, ...]) -> list:
    """The values of a rectangular nest of lists of this shape, in row-major order."""
    items = [value]
    for level, size in enumerate(shape):
        below = []
        for item in items:
            if not isinstance(item, list):
                raise _bad(
                    f'input "{clip(name)}": JSON value {_show(item)} found at level {level + 1} of the lists; '
                    f"values are expected at level {len(shape) + 1} (shape {list(shape)}, from the first elements)"
                )
            if len(item) != size:
                raise _bad(
                    f'input "{clip(name)}": list of {len(item)} values at level {level + 1}, expected {size} '
                    f"(shape {list(shape)}, from the first elements; lists must be rectangular)"
                )
            below.extend(item)
        items = below
    return items


def _fill_tensor(proto: wire.TensorProto, name: str, dtype: int, shape: tuple[int, ...], value: object) -> None:
    """Fill a TensorProto of the signature's dtype from a JSON value of this shape, each value checked."""
    proto.dtype = dtype
    for size in shape:
        proto.tensor_shape.dim.add(size=size)
    values = _leaves(name, value, shape)
    kinds = set(map(type, values))
    if dtype in _EXACT_INT:
        _only(name, dtype, values, kinds, (float, int))
        exact = _EXACT_INT[dtype]
        lossy: float | None = (
            next((v for v in values if type(v) is int and abs(v) > exact), None) if int in kinds else None
        )
        if lossy is None and float in kinds:
            most = _F32_MAX if dtype == DataType.DT_FLOAT else math.inf
            lossy = next((v for v in values if type(v) is float and abs(v) >= most and not _constant(v)), None)
        if lossy is not None and math.isinf(lossy):
            raise _bad(f'input "{clip(name)}": JSON Parse error: Number too big to be stored in double')
        if lossy is not None:
            raise _bad(
                f'input "{clip(name)}": cannot convert JSON value {_show(lossy)} to '
                f"{tensors.dtype_name(dtype)} without loss of precision"
            )
        getattr(proto, "float_val" if dtype == DataType.DT_FLOAT else "double_val").extend(values)
    elif dtype in _INT_FIELDS:
        field, low, high = _INT_FIELDS[dtype]
        _only(name, dtype, values, kinds, (int,))
        if values and (min(values) < low or max(values) > high):
            wrong = next(v for v in values if not low <= v <= high)
            raise _bad(
                f'input "{clip(name)}": JSON value {_show(wrong)} is out of range for '
                f"{tensors.dtype_name(dtype)} (TF Serving reads it as [{low}, {high}])"
            )
        getattr(proto, field).extend(values)
    elif dtype == DataType.DT_BOOL:
        _only(name, dtype, values, kinds, (bool,))
        proto.bool_val.extend(values)
    elif dtype == DataType.DT_STRING:
        _only(name, dtype, values, kinds, (str, dict))
        proto.string_val.extend(_string_value(name, v) for v in values)
    else:
        raise UnimplementedError(
            f'input "{clip(name)}": conversion of JSON values to {tensors.dtype_name(dtype)} is not supported',
            code=grpc.StatusCode.UNIMPLEMENTED,
        )


def _constant(value: float) -> bool:
    return value is _CONSTANTS["Infinity"] or value is _CONSTANTS["-Infinity"]


def _only(name: str, dtype: int, values: list, kinds: set, allowed: tuple[type, ...]) -> None:
    if kinds <= set(allowed):
        return
    wrong = next(v for v in values if type(v) not in allowed)
    if isinstance(wrong, list):
        raise _bad(
            f'input "{clip(name)}": list {_show(wrong)} found where a value was expected: lists nested '
            "deeper than the first element's (lists must be rectangular)"
        )
    if _is_b64(wrong):
        raise _bad(
            f'input "{clip(name)}": {{"{B64_KEY}": ...}} (base64 binary data) is only accepted for string '
            f"inputs; this input takes {tensors.dtype_name(dtype)}"
        )
    raise _bad(
        f'input "{clip(name)}": JSON value {_show(wrong)} ({_json_type(wrong)}) is not of expected type '
        f"{tensors.dtype_name(dtype)}"
    )


def _string_value(name: str, value: str | dict) -> bytes:
    if isinstance(value, str):
        return value.encode("utf-8")
    if not _is_b64(value):
        raise _bad(
            f'input "{clip(name)}": JSON object {_show(value)} is not a value; binary strings are written '
            f'{{"{B64_KEY}": "<base64>"}}'
        )
    try:
        return base64.b64decode(value[B64_KEY], validate=True)
    except (binascii.Error, ValueError):
        raise _bad(f'input "{clip(name)}": unable to base64 decode {_show(value)}') from None


def _is_b64(value: object) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get(B64_KEY), str)


def _is_named(value: object) -> TypeGuard[dict]:
    return isinstance(value, dict) and not _is_b64(value)


def _json_type(value: object) -> str:
    for kind, label in ((type(None), "Null"), (bool, "Bool"), (dict, "Object"), (list, "Array"), (str, "String")):
        if isinstance(value, kind):
            return label
    return "Number"


def _show(value: object, depth: int = 2) -> str:
    """A JSON value for an error message: a few elements of lists and keys of objects, at most 64 characters,
    never the whole of a large value."""
    if isinstance(value, list):
        if depth == 0:
            return "[...]" if value else "[]"
        head = ", ".join(_show(v, depth - 1) for v in value[:3])
        return clip("[" + head + (f", ... ({len(value)} items)" if len(value) > 3 else "") + "]")
    if isinstance(value, dict):
        return clip(
            "{"
            + ", ".join(json.dumps(clip(k, 16)) + ": ..." for k in list(value)[:3])
            + (", ..." if len(value) > 3 else "")
            + "}"
        )
    if isinstance(value, str):
        return json.dumps(clip(value, 48))
    return clip(json.dumps(value))


def _keys(names: Iterable[object]) -> str:
    listed = sorted(str(n) for n in names)
    return "{" + ",".join(clip(n) for n in listed[:16]) + (",..." if len(listed) > 16 else "") + "}"


# -- response ---------------------------------------------------------------------------------------------------
def predict_response_json(
    outputs: Mapping[str, wire.TensorProto], form: JsonFormat, max_bytes: int | None = None
) -> bytes:
    """A PredictResponse's output TensorProtos as TF Serving's REST answer in the request's form. Raises
    BadRequestError for what the form cannot hold (a scalar output or outputs of different batch sizes in the
    row form), as TF Serving does; and RESOURCE_EXHAUSTED for an answer longer than ``max_bytes`` (the gRPC send
    limit's code), from the shortest text it could have before any value is written, else once written."""
    if not outputs:
        raise _bad("Cannot convert empty tensor map to JSON")
    arrays = {name: tensors.to_array(outputs[name]) for name in sorted(outputs)}
    single = len(arrays) == 1
    if form is JsonFormat.ROW:
        batch = None
        for name, array in arrays.items():
            if array.ndim == 0:
                raise _bad(
                    f"Tensor name: {clip(name)} has no shape information; a scalar output cannot be answered "
                    f"in the row ('{INSTANCES_KEY}') form, use '{INPUTS_KEY}'"
                )
            if batch is not None and array.shape[0] != batch:
                raise _bad(
                    f"Tensor name: {clip(name)} has inconsistent batch size: {array.shape[0]} expecting: {batch}"
                )
            batch = array.shape[0]
    if max_bytes is not None:
        _check_answer_size(_shortest_answer(arrays, form), max_bytes, "at least ")
    if form is JsonFormat.COLUMNAR:
        texts = {name: _nested(_value_texts(name, a), a.shape)[0] for name, a in arrays.items()}
        body = next(iter(texts.values())) if single else _object(texts)
        answer = f'{{"outputs": {body}}}'.encode()
    else:
        rows = {name: _nested(_value_texts(name, a), a.shape, keep_rows=True) for name, a in arrays.items()}
        first = next(iter(rows.values()))
        items = [first[i] if single else _object({n: r[i] for n, r in rows.items()}) for i in range(batch or 0)]
        answer = ('{"predictions": [' + ", ".join(items) + "]}").encode()
    if max_bytes is not None:
        _check_answer_size(len(answer), max_bytes, "")
    return answer


# The shortest JSON text of one value of each kind of dtype (numpy's dtype.kind), with its comma or bracket.
_SHORTEST_VALUE = {"f": len("0.0,"), "i": len("0,"), "u": len("0,"), "b": len("true,"), "O": len('"",')}


def _shortest_answer(arrays: Mapping[str, np.ndarray], form: JsonFormat) -> int:
    """The fewest bytes the answer can take: every value at its shortest, the keys of the row form's objects."""
    size = sum(a.size * _SHORTEST_VALUE.get(a.dtype.kind, 1) for a in arrays.values())
    if form is JsonFormat.ROW and len(arrays) > 1:
        rows = next(iter(arrays.values())).shape[0]
        size += rows * sum(len(json.dumps(name)) + len(": , ") for name in arrays)
    return size


def _check_answer_size(size: int, max_bytes: int, qualifier: str) -> None:
    if size > max_bytes:
        raise ServingError(
            f"the JSON answer would take {qualifier}{size} bytes, over the server's limit of "
            f"{max_bytes} (--max-message-bytes, the gRPC send limit)",
            code=grpc.StatusCode.RESOURCE_EXHAUSTED,
        )


def error_json(message: str) -> bytes:
    """TF Serving's error body: {"error": "<message>"}."""
    return json.dumps({"error": message}).encode()


def _object(texts: Mapping[str, str]) -> str:
    return "{" + ", ".join(f"{json.dumps(name)}: {text}" for name, text in texts.items()) + "}"


def _nested(flat: list[str], shape: tuple[int, ...], keep_rows: bool = False) -> list[str]:
    """Value texts in row-major order nested into JSON lists of `shape`: [whole] (or one text per row)."""
    items = flat
    for axis in range(len(shape) - 1, 0 if keep_rows else -1, -1):
        size, groups = shape[axis], math.prod(shape[:axis])
        items = ["[" + ",".join(items[g * size : (g + 1) * size]) + "]" for g in range(groups)]
    return items


def _value_texts(name: str, array: np.ndarray) -> list[str]:
    flat = array.reshape(-1)
    if flat.dtype.kind == "f":
        return _float_texts(flat.astype(np.float32) if flat.dtype == np.float16 else flat)
    if flat.dtype.kind in "iu":
        return [str(v) for v in flat.tolist()]
    if flat.dtype.kind == "b":
        return ["true" if v else "false" for v in flat.tolist()]
    if flat.dtype == object:  # DT_STRING: bytes
        if name.endswith(BYTES_SUFFIX):
            return [json.dumps({B64_KEY: base64.b64encode(v).decode("ascii")}) for v in flat.tolist()]
        return [json.dumps(v.decode("utf-8", "replace")) for v in flat.tolist()]
    raise ServingError(f"output {clip(name)}: cannot write {array.dtype} as JSON", code=grpc.StatusCode.INTERNAL)


def _float_texts(values: np.ndarray) -> list[str]:
    """TF Serving's WriteDecimal: %g (six digits) when it reads back as the same value, else max_digits10 digits
    (9 for float32, 17 for float64); '.0' on whole numbers; NaN, Infinity, -Infinity.

    In bulk, as an answer may hold millions of values: one % over all of them, read back by NumPy, a second % over
    those that need more digits, and a loop only over whole numbers and non-finite values. An array of few
    distinct values (an init_state's zeros) formats each of them once."""
    if values.size > 4096:
        bits = values.view(np.uint32 if values.dtype == np.float32 else np.uint64)  # -0.0 is not 0.0 here
        distinct, where = np.unique(bits, return_inverse=True)
        if 2 * distinct.size <= values.size:
            return np.array(_float_texts(distinct.view(values.dtype)), dtype=object)[where.reshape(-1)].tolist()
    if values.size == 0:
        return []
    joined = ("%g," * values.size % tuple(values.tolist()))[:-1]
    texts = np.array(joined.split(","), dtype=object)
    finite = np.isfinite(values)
    with np.errstate(all="ignore"):
        exact = np.fromstring(joined, dtype=np.float64, sep=",").astype(values.dtype) == values
    longer = np.flatnonzero(finite & ~exact)
    if longer.size:
        digits = 9 if values.dtype == np.float32 else 17
        texts[longer] = (f"%.{digits}g," * longer.size % tuple(values[longer].tolist()))[:-1].split(",")
    with np.errstate(all="ignore"):
        whole = np.flatnonzero(finite & (values == np.trunc(values)))
    for i in whole.tolist():
        if "." not in texts[i] and "e" not in texts[i]:
            texts[i] += ".0"
    for i in np.flatnonzero(~finite).tolist():
        value = values[i]
        texts[i] = "NaN" if value != value else "Infinity" if value > 0 else "-Infinity"
    return texts.tolist()
