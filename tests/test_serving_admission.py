"""The server's request checks without a server: serving.admission, tensors.to_array's fill rule, message
bounds, and the rate-limited log line for unparseable bodies.

The oracle for how a TensorProto decodes is TensorFlow's own ``Tensor::FromProto`` (``tf.io.parse_tensor``),
the function TF Serving decodes a request's inputs with.
"""

from __future__ import annotations

import logging

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, types_pb2

from serving import admission, errors, tensors, unparseable
from serving.requests import Signature, TensorInfo

SIG = Signature(
    name="padded",
    inputs={
        "sequences": TensorInfo(types_pb2.DT_FLOAT, (None, None, 3)),
        "lengths": TensorInfo(types_pb2.DT_INT32, (None,)),
    },
    outputs={"h": TensorInfo(types_pb2.DT_FLOAT, (None, 4)), "c": TensorInfo(types_pb2.DT_FLOAT, (None, 4))},
)
INIT = Signature(name="init_state", inputs={"batch_size": TensorInfo(types_pb2.DT_INT32, ())}, outputs=SIG.outputs)
LIMITS = admission.RequestLimits(max_elements=1000, max_sequence_length=50)


def claim(dtype, shape, **values) -> tensor_pb2.TensorProto:
    proto = tensor_pb2.TensorProto(dtype=dtype, **values)
    for size in shape:
        proto.tensor_shape.dim.add(size=size)
    return proto


@pytest.mark.parametrize(
    "proto",
    [
        claim(types_pb2.DT_FLOAT, [2, 2], float_val=[1.0, 2.0]),  # fewer: the last value repeats
        claim(types_pb2.DT_FLOAT, [3], float_val=[1.0, 2.0, 3.0, 4.0, 5.0]),  # more: the first ones
        claim(types_pb2.DT_FLOAT, [2, 3]),  # none: zeros
        claim(types_pb2.DT_HALF, [2], half_val=[15360, 16384]),  # float16 bit patterns: 1.0, 2.0
        claim(types_pb2.DT_INT8, [3], int_val=[-128, 0, 127]),
        claim(types_pb2.DT_STRING, [2], string_val=[b"a", b"b", b"c"]),
    ],
    ids=["fewer", "more", "none", "half", "int8", "strings"],
)
def test_to_array_decodes_like_tensorflow(proto):
    want = tf.io.parse_tensor(proto.SerializeToString(), tf.dtypes.as_dtype(proto.dtype)).numpy()
    np.testing.assert_array_equal(tensors.to_array(proto), want)


@pytest.mark.parametrize(
    ("proto", "message"),
    [
        (claim(types_pb2.DT_INT8, [1], int_val=[300]), "300 is out of range for int8"),
        (claim(types_pb2.DT_UINT8, [1], int_val=[-1]), "-1 is out of range for uint8"),
        (claim(types_pb2.DT_INT16, [1], int_val=[40000]), "out of range for int16"),
        (claim(types_pb2.DT_UINT16, [1], int_val=[-5]), "out of range for uint16"),
        (claim(types_pb2.DT_HALF, [1], half_val=[70000]), "out of range for uint16"),
        (claim(types_pb2.DT_FLOAT, [2, -1]), "negative dimension"),
        (claim(types_pb2.DT_FLOAT, [4], tensor_content=b"\0" * 12), "holds 12 bytes"),
    ],
)
def test_to_array_refuses_what_cannot_be_meant(proto, message):
    """TensorFlow wraps an int8 of 300 to 44; the server refuses it rather than run on a value nobody sent."""
    with pytest.raises(ValueError, match=message):
        tensors.to_array(proto)


def decode(inputs, signature=SIG, limits=LIMITS):
    return admission.decode_inputs(signature, inputs, limits)


def good_inputs(batch=2, steps=5):
    return {
        "sequences": tensors.to_proto(np.ones((batch, steps, 3), np.float32), into=tensor_pb2.TensorProto()),
        "lengths": tensors.to_proto(np.full(batch, steps, np.int32), into=tensor_pb2.TensorProto()),
    }


def test_decode_inputs_builds_the_arrays_of_a_good_request():
    arrays = decode(good_inputs())
    assert arrays["sequences"].shape == (2, 5, 3) and arrays["lengths"].tolist() == [5, 5]
    assert decode(good_inputs(batch=0))["sequences"].shape == (0, 5, 3)  # TF Serving answers an empty batch


@pytest.mark.parametrize(
    ("change", "code", "message"),
    [
        (
            {"sequences": claim(types_pb2.DT_FLOAT, [2**40, 5, 3])},
            "INVALID_ARGUMENT",
            "over the server's limit of 1000",
        ),
        (
            {
                "sequences": claim(types_pb2.DT_FLOAT, [2, 5, 3], float_val=[1.0]),
                "lengths": claim(types_pb2.DT_INT32, [2**40]),
            },
            "INVALID_ARGUMENT",
            '"lengths": shape .* over the server\'s limit',
        ),
        (
            {"sequences": claim(types_pb2.DT_FLOAT, [1, 51, 3], float_val=[1.0])},
            "INVALID_ARGUMENT",
            "sequence length 51",
        ),
        ({"sequences": claim(types_pb2.DT_FLOAT, [2, 5, 3])}, "INVALID_ARGUMENT", "no values were sent"),
        ({"sequences": claim(types_pb2.DT_STRING, [10**7])}, "INVALID_ARGUMENT", "expects float32 but DT_STRING"),
        (
            {"sequences": claim(types_pb2.DT_INT8, [2, 5, 3], int_val=[300])},
            "INVALID_ARGUMENT",
            "expects float32 but int8",
        ),
        (
            {"sequences": claim(types_pb2.DT_FLOAT, [2, 5, 3], tensor_content=b"\0" * 8)},
            "INVALID_ARGUMENT",
            "holds 8 bytes",
        ),
        ({"sequences": claim(types_pb2.DT_FLOAT, [2, 5, -3])}, "INVALID_ARGUMENT", "tensor parsing error: sequences"),
    ],
)
def test_decode_inputs_refuses_claims_before_building_anything(change, code, message):
    """Every claim here would take gigabytes or more if it were built first (none is within 1000 elements)."""
    with pytest.raises(errors.BadRequestError, match=message) as info:
        decode({**good_inputs(), **change})
    assert info.value.code.name == code


def test_unknown_rank_with_dimensions_is_refused_and_without_is_a_scalar():
    proto = claim(types_pb2.DT_FLOAT, [2, 5, 3], float_val=[1.0])
    proto.tensor_shape.unknown_rank = True
    with pytest.raises(errors.BadRequestError, match="tensor parsing error"):
        decode({**good_inputs(), "sequences": proto})
    scalar = tensor_pb2.TensorProto(dtype=types_pb2.DT_INT32, int_val=[3])
    scalar.tensor_shape.unknown_rank = True
    assert decode({"batch_size": scalar}, INIT).get("batch_size") == 3


def test_init_state_batch_size_counts_against_the_element_limit():
    ok = {"batch_size": tensors.to_proto(np.int32(125), into=tensor_pb2.TensorProto())}  # 125 rows x 8 = 1000
    assert decode(ok, INIT)["batch_size"] == 125
    over = {"batch_size": tensors.to_proto(np.int32(2**31 - 1), into=tensor_pb2.TensorProto())}
    with pytest.raises(errors.BadRequestError, match="2147483647 rows of 8") as info:
        decode(over, INIT)
    assert info.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_output_fetches_names_unknown_and_duplicate_aliases():
    assert admission.output_fetches(SIG, []) == ("c", "h")
    assert admission.output_fetches(SIG, ["h"]) == ("h",)
    with pytest.raises(errors.BadRequestError, match="duplicate output tensor alias: h"):
        admission.output_fetches(SIG, ["h", "h"])
    with pytest.raises(errors.BadRequestError, match=r"alias not found in signature: x{64}\.\.\.\(100000 chars\)"):
        admission.output_fetches(SIG, ["x" * 100_000])


def test_error_messages_are_bounded():
    assert errors.clip("abc") == "abc"
    long_key = {"k" * 10**6: None, **{f"extra{i}": None for i in range(1000)}}
    with pytest.raises(errors.BadRequestError) as info:
        decode(long_key)
    assert len(info.value.details.encode()) <= errors.MAX_DETAILS_BYTES
    cut = errors.bound_details("é" * 5000)
    assert len(cut.encode()) <= 1024 and cut.endswith("...TRUNCATED")


def test_unparseable_bodies_log_one_line_per_window():
    now = [0.0]
    log_filter = unparseable.UnparseableBodies(every_s=10.0, clock=lambda: now[0])

    def record() -> logging.LogRecord:
        try:
            raise ValueError("Error parsing message")
        except ValueError:
            import sys

            return logging.LogRecord(
                "grpc._common", logging.ERROR, __file__, 1, "Exception deserializing message!", (), sys.exc_info()
            )

    passed = []
    for step in range(30):  # one bad body per second for 30 s
        now[0] = float(step)
        rec = record()
        if log_filter.filter(rec):
            passed.append(rec)
    assert len(passed) == 3
    assert all(r.exc_info is None and r.levelno == logging.WARNING for r in passed)
    assert passed[1].getMessage().endswith("9 more since the last such line")
    other = logging.LogRecord("grpc._common", logging.ERROR, __file__, 1, "Exception serializing message!", (), None)
    assert log_filter.filter(other) and other.msg == "Exception serializing message!"
