"""NumPy arrays to and from `tensorflow.TensorProto`, without running TensorFlow ops.

TF Serving answers with `tensor_content` (raw little-endian bytes) for numeric outputs,
but a `TensorProto` may also carry its values in the typed `*_val` fields (that is what
`tf.make_tensor_proto` does for small or scalar tensors, and what hand-written clients
send). `to_array` reads both; `to_proto` always writes `tensor_content`.
"""

from __future__ import annotations

import math
import sys

import numpy as np
from tensorflow.core.framework import tensor_pb2, types_pb2

__all__ = ["to_proto", "to_array", "dtype_of", "numpy_dtype", "dtype_name"]

# numpy dtype <-> tensorflow DataType enum, for the dtypes a model server handles.
_TO_ENUM: dict[np.dtype, int] = {
    np.dtype(np.float32): types_pb2.DT_FLOAT,
    np.dtype(np.float64): types_pb2.DT_DOUBLE,
    np.dtype(np.float16): types_pb2.DT_HALF,
    np.dtype(np.int8): types_pb2.DT_INT8,
    np.dtype(np.int16): types_pb2.DT_INT16,
    np.dtype(np.int32): types_pb2.DT_INT32,
    np.dtype(np.int64): types_pb2.DT_INT64,
    np.dtype(np.uint8): types_pb2.DT_UINT8,
    np.dtype(np.uint16): types_pb2.DT_UINT16,
    np.dtype(np.uint32): types_pb2.DT_UINT32,
    np.dtype(np.uint64): types_pb2.DT_UINT64,
    np.dtype(np.bool_): types_pb2.DT_BOOL,
}
_TO_NUMPY: dict[int, np.dtype] = {enum: dtype for dtype, enum in _TO_ENUM.items()}

# The typed value field each DataType uses when `tensor_content` is empty.
_VAL_FIELD: dict[int, str] = {
    types_pb2.DT_FLOAT: "float_val",
    types_pb2.DT_DOUBLE: "double_val",
    types_pb2.DT_HALF: "half_val",
    types_pb2.DT_INT8: "int_val",
    types_pb2.DT_INT16: "int_val",
    types_pb2.DT_INT32: "int_val",
    types_pb2.DT_UINT8: "int_val",
    types_pb2.DT_UINT16: "int_val",
    types_pb2.DT_INT64: "int64_val",
    types_pb2.DT_UINT32: "uint32_val",
    types_pb2.DT_UINT64: "uint64_val",
    types_pb2.DT_BOOL: "bool_val",
}


def dtype_name(enum: int) -> str:
    """'float32' for DT_FLOAT, the enum's name for types NumPy has no twin for."""
    dtype = _TO_NUMPY.get(enum)
    return dtype.name if dtype is not None else types_pb2.DataType.Name(enum)


def dtype_of(array: np.ndarray) -> int:
    """The DataType enum for an array's dtype; ValueError for dtypes a model cannot take."""
    dtype = np.dtype(array.dtype)
    if dtype.kind in ("U", "S", "O"):
        return types_pb2.DT_STRING
    try:
        return _TO_ENUM[dtype.newbyteorder("=")]
    except KeyError:
        raise ValueError(f"unsupported dtype {dtype}") from None


def numpy_dtype(enum: int) -> np.dtype | None:
    """The NumPy dtype for a DataType enum, or None (strings and exotic types)."""
    return _TO_NUMPY.get(enum)


def to_proto(array: np.ndarray) -> tensor_pb2.TensorProto:
    """Pack an array into a TensorProto (numeric: `tensor_content`; strings: `string_val`)."""
    array = np.asarray(array)
    proto = tensor_pb2.TensorProto(dtype=dtype_of(array))
    for size in array.shape:
        proto.tensor_shape.dim.add(size=size)
    if proto.dtype == types_pb2.DT_STRING:
        proto.string_val.extend(
            v if isinstance(v, bytes) else str(v).encode() for v in array.reshape(-1)
        )
    else:
        if _big_endian(array.dtype):
            array = array.astype(array.dtype.newbyteorder("<"))
        proto.tensor_content = array.tobytes()  # C order, whatever the array's strides
    return proto


def _big_endian(dtype: np.dtype) -> bool:
    return dtype.byteorder == ">" or (dtype.byteorder == "=" and sys.byteorder == "big")


def to_array(proto: tensor_pb2.TensorProto) -> np.ndarray:
    """Unpack a TensorProto into an array; ValueError if its size does not match its shape."""
    shape = tuple(int(d.size) for d in proto.tensor_shape.dim)
    size = math.prod(shape)
    if proto.dtype == types_pb2.DT_STRING:
        values = np.array(list(proto.string_val), dtype=object)
        return _fill(values, shape, size, np.dtype(object))
    dtype = _TO_NUMPY.get(proto.dtype)
    if dtype is None:
        raise ValueError(f"unsupported dtype {types_pb2.DataType.Name(proto.dtype)}")
    if proto.tensor_content:
        flat = np.frombuffer(proto.tensor_content, dtype=dtype.newbyteorder("<"))
        if flat.size != size:
            raise ValueError(f"tensor_content holds {flat.size} values, shape {list(shape)} needs {size}")
        return flat.astype(dtype).reshape(shape)
    raw = getattr(proto, _VAL_FIELD[proto.dtype])
    if proto.dtype == types_pb2.DT_HALF:  # half_val holds the float16 bit patterns
        values = np.array(list(raw), dtype=np.uint16).view(np.float16)
    else:
        values = np.array(list(raw), dtype=dtype)
    return _fill(values, shape, size, dtype)


def _fill(values: np.ndarray, shape: tuple[int, ...], size: int, dtype: np.dtype) -> np.ndarray:
    # TensorFlow's rule: fewer values than elements repeats the last value; none means zeros.
    if values.size == size:
        return values.reshape(shape)
    if values.size == 0:
        return np.zeros(shape, dtype=dtype)
    if values.size < size:
        padded = np.concatenate([values, np.repeat(values[-1:], size - values.size)])
        return padded.reshape(shape)
    raise ValueError(f"tensor holds {values.size} values, shape {list(shape)} needs {size}")
