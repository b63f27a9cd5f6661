"""NumPy arrays to and from `tensorflow.TensorProto`, without TensorFlow.

TF Serving answers with `tensor_content` (raw little-endian bytes) for numeric outputs,
but a `TensorProto` may also carry its values in the typed `*_val` fields (that is what
`tf.make_tensor_proto` does for small or scalar tensors, and what hand-written clients
send). `to_array` reads both; `to_proto` always writes `tensor_content`.

Both work on the client's TensorProto (serving.wire) and on TensorFlow's alike: `to_array` reads any
TensorProto, and `to_proto(array, into=proto)` fills one you hold (a field of a TensorFlow PredictResponse,
say), since a message of one class cannot CopyFrom the other.
"""

from __future__ import annotations

import math
import sys

import numpy as np

from serving import wire
from serving.wire import DataType

__all__ = ["claimed_shape", "dtype_name", "dtype_of", "numpy_dtype", "to_array", "to_proto", "values_sent"]

# numpy dtype <-> tensorflow DataType enum, for the dtypes a model server handles.
_TO_ENUM: dict[np.dtype, int] = {
    np.dtype(np.float32): DataType.DT_FLOAT,
    np.dtype(np.float64): DataType.DT_DOUBLE,
    np.dtype(np.float16): DataType.DT_HALF,
    np.dtype(np.int8): DataType.DT_INT8,
    np.dtype(np.int16): DataType.DT_INT16,
    np.dtype(np.int32): DataType.DT_INT32,
    np.dtype(np.int64): DataType.DT_INT64,
    np.dtype(np.uint8): DataType.DT_UINT8,
    np.dtype(np.uint16): DataType.DT_UINT16,
    np.dtype(np.uint32): DataType.DT_UINT32,
    np.dtype(np.uint64): DataType.DT_UINT64,
    np.dtype(np.bool_): DataType.DT_BOOL,
}
_TO_NUMPY: dict[int, np.dtype] = {enum: dtype for dtype, enum in _TO_ENUM.items()}

# The typed value field each DataType uses when `tensor_content` is empty.
_VAL_FIELD: dict[int, str] = {
    DataType.DT_FLOAT: "float_val",
    DataType.DT_DOUBLE: "double_val",
    DataType.DT_HALF: "half_val",
    DataType.DT_INT8: "int_val",
    DataType.DT_INT16: "int_val",
    DataType.DT_INT32: "int_val",
    DataType.DT_UINT8: "int_val",
    DataType.DT_UINT16: "int_val",
    DataType.DT_INT64: "int64_val",
    DataType.DT_UINT32: "uint32_val",
    DataType.DT_UINT64: "uint64_val",
    DataType.DT_BOOL: "bool_val",
}


def dtype_name(enum: int) -> str:
    """'float32' for DT_FLOAT, the enum's name for types NumPy has no twin for."""
    dtype = _TO_NUMPY.get(enum)
    return dtype.name if dtype is not None else _enum_name(enum)


def dtype_of(array: np.ndarray) -> int:
    """The DataType enum for an array's dtype; ValueError for dtypes a model cannot take."""
    dtype = np.dtype(array.dtype)
    if dtype.kind in ("U", "S", "O"):
        return int(DataType.DT_STRING)
    try:
        return int(_TO_ENUM[dtype.newbyteorder("=")])
    except KeyError:
        raise ValueError(f"unsupported dtype {dtype}") from None


def numpy_dtype(enum: int) -> np.dtype | None:
    """The NumPy dtype for a DataType enum, or None (strings and exotic types)."""
    return _TO_NUMPY.get(enum)


def to_proto(array: np.ndarray, *, into: wire.TensorProto | None = None) -> wire.TensorProto:
    """Pack an array into a TensorProto (numeric: `tensor_content`; strings: `string_val`).

    Returns a new `serving.wire.TensorProto`, or fills and returns `into` (any TensorProto class, cleared
    first).
    """
    array = np.asarray(array)
    proto = wire.TensorProto() if into is None else into
    proto.Clear()
    proto.dtype = dtype_of(array)
    for size in array.shape:
        proto.tensor_shape.dim.add(size=size)
    if proto.dtype == DataType.DT_STRING:
        proto.string_val.extend(v if isinstance(v, bytes) else str(v).encode() for v in array.reshape(-1))
    else:
        if _big_endian(array.dtype):
            array = array.astype(array.dtype.newbyteorder("<"))
        proto.tensor_content = array.tobytes()  # C order, whatever the array's strides
    return proto


def _enum_name(enum: int) -> str:
    try:
        return DataType(enum).name
    except ValueError:
        return f"DataType {enum}"


def _big_endian(dtype: np.dtype) -> bool:
    return dtype.byteorder == ">" or (dtype.byteorder == "=" and sys.byteorder == "big")


def claimed_shape(proto: wire.TensorProto) -> tuple[int, ...]:
    """The shape a TensorProto claims; ValueError for a negative dimension (TensorFlow's
    ``Tensor::FromProto`` refuses it) and for ``unknown_rank`` set beside dimensions, a claim that
    contradicts itself (``Tensor::FromProto`` reads the dimensions; ``unknown_rank`` alone is a scalar)."""
    if proto.tensor_shape.unknown_rank and len(proto.tensor_shape.dim):
        raise ValueError("tensor_shape has unknown_rank set and dimensions")
    shape = tuple(int(d.size) for d in proto.tensor_shape.dim)
    if any(size < 0 for size in shape):
        raise ValueError(f"tensor_shape has a negative dimension: {list(shape)}")
    return shape


def values_sent(proto: wire.TensorProto) -> int:
    """How many values a TensorProto actually carries (``tensor_content`` or its typed field), read
    without building anything."""
    if proto.dtype == DataType.DT_STRING:
        return len(proto.string_val)
    dtype = _TO_NUMPY.get(proto.dtype)
    if dtype is None:
        return 0
    if proto.tensor_content:
        return len(proto.tensor_content) // dtype.itemsize
    return len(getattr(proto, _VAL_FIELD[proto.dtype]))


def to_array(proto: wire.TensorProto) -> np.ndarray:
    """Unpack a TensorProto (of any class) into an array, by TensorFlow's rules for the typed fields: fewer
    values than elements repeat the last one, none means zeros, more use the first ones. ValueError for a
    shape TensorFlow refuses, ``tensor_content`` whose size does not match the shape, or a typed value
    outside its dtype's range (an int8 of 300)."""
    shape = claimed_shape(proto)
    size = math.prod(shape)
    if proto.dtype == DataType.DT_STRING:
        values = np.array(list(proto.string_val[:size]), dtype=object)
        return _fill(values, shape, size, np.dtype(object))
    dtype = _TO_NUMPY.get(proto.dtype)
    if dtype is None:
        raise ValueError(f"unsupported dtype {_enum_name(proto.dtype)}")
    if proto.tensor_content:
        if len(proto.tensor_content) != size * dtype.itemsize:
            raise ValueError(
                f"tensor_content holds {len(proto.tensor_content)} bytes, shape {list(shape)} of "
                f"{dtype.name} needs {size * dtype.itemsize}"
            )
        flat = np.frombuffer(proto.tensor_content, dtype=dtype.newbyteorder("<"))
        return flat.astype(dtype).reshape(shape)
    raw = getattr(proto, _VAL_FIELD[proto.dtype])[:size]
    if proto.dtype == DataType.DT_HALF:  # half_val holds the float16 bit patterns
        values = _in_range(np.array(raw, dtype=np.int64), np.dtype(np.uint16)).view(np.float16)
    elif dtype.kind in "iu" and dtype.itemsize < 4:  # int8/16, uint8/16 travel in int_val (int32)
        values = _in_range(np.array(raw, dtype=np.int64), dtype)
    else:
        values = np.array(raw, dtype=dtype)
    return _fill(values, shape, size, dtype)


def _in_range(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    info = np.iinfo(dtype)
    bad = values[(values < info.min) | (values > info.max)]
    if bad.size:
        raise ValueError(f"value {int(bad[0])} is out of range for {dtype.name} [{info.min}, {info.max}]")
    return values.astype(dtype)


def _fill(values: np.ndarray, shape: tuple[int, ...], size: int, dtype: np.dtype) -> np.ndarray:
    # TensorFlow's rule: fewer values than elements repeats the last value; none means zeros.
    if values.size == size:
        return values.reshape(shape)
    if values.size == 0:
        return np.zeros(shape, dtype=dtype)
    padded = np.concatenate([values, np.repeat(values[-1:], size - values.size)])
    return padded.reshape(shape)
