"""The client's one conversion rule (serving.conform), without a network: what is converted, to what, and
what is refused with a message naming the input, the dtype received and the dtype expected."""

import re

import grpc
import numpy as np
import pytest

import serving
from serving import conform, requests, wire

F32, I32 = wire.DataType.DT_FLOAT, wire.DataType.DT_INT32
SIG = requests.Signature(
    name="padded",
    inputs={"sequences": requests.TensorInfo(F32, (None, None, 2)), "lengths": requests.TensorInfo(I32, (None,))},
    outputs={},
)
TOKENS = requests.TensorInfo(I32, (None, None))


@pytest.mark.parametrize(
    ("value", "dtype"),
    [
        (np.array([[[0.1, 0.2]]], np.float64), np.float32),
        (np.array([[[0.5, 1.0]]], np.float16), np.float32),
        ([[[0.1, 0.2]]], np.float32),  # a Python list of floats
        ([[[0, 1]]], np.float32),  # a Python list of ints into a float input
        (np.array([[[2**24, -(2**24)]]], np.int64), np.float32),  # the largest integers float32 holds exactly
        (np.array([[[3, 255]]], np.uint8), np.float32),
        (np.array([[[np.nan, np.inf]]]), np.float32),  # NaN and inf stay themselves
    ],
)
def test_floats_and_exact_integers_become_the_float_input(value, dtype):
    out = conform.conform("sequences", value, SIG.inputs["sequences"])
    assert out.dtype == dtype
    np.testing.assert_array_equal(out, np.asarray(value).astype(dtype))


@pytest.mark.parametrize(
    "value", [np.array([[7, 2]], np.int64), np.array([[7, 2]], np.uint8), [[7, 2]], np.array([[7, 2]], np.int16)]
)
def test_integers_in_range_become_the_int_input(value):
    out = conform.conform("sequences", value, TOKENS)
    assert out.dtype == np.int32 and out.tolist() == [[7, 2]]


@pytest.mark.parametrize(
    ("info", "value", "message"),
    [
        (
            "float",
            np.array([[[1e300, 0.0]]]),
            "expects float32 but float64 is provided, and converting it would "
            "change a value: 1e\\+300 is beyond float32's range",
        ),
        (
            "float",
            np.array([[[2**24 + 1, 0]]], np.int64),
            "expects float32 but int64 .* 16777217 is not exactly representable in float32",
        ),
        ("float", np.array([[[2**64 - 1, 0]]], np.uint64), "expects float32 but uint64 .* not exactly representable"),
        ("tokens", np.array([[2**31, 0]], np.int64), "expects int32 but int64 .* 2147483648 is out of int32's range"),
        ("tokens", np.array([[-1, 0]], np.int64) * 2**40, "out of int32's range"),
    ],
)
def test_value_changing_conversions_are_refused(info, value, message):
    with pytest.raises(serving.BadRequestError, match=message) as raised:
        conform.conform("sequences", value, SIG.inputs["sequences"] if info == "float" else TOKENS)
    assert raised.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert '"sequences"' in str(raised.value)


@pytest.mark.parametrize(
    ("value", "received"),
    [
        (np.array([[[True, False]]]), "bool"),
        (np.array([[["a", "b"]]]), "<U1"),
        (np.array([[[1 + 2j, 0]]]), "complex128"),
    ],
)
def test_kinds_that_do_not_convert_are_left_for_check_inputs_to_refuse(value, received):
    out = conform.conform_inputs({"sequences": value, "lengths": [1]}, SIG)
    assert out["sequences"] is value and out["lengths"].dtype == np.int32
    with pytest.raises(serving.BadRequestError, match=f'"sequences": expects float32 but {received} is provided'):
        requests.check_inputs(SIG, out)


def test_floats_into_an_integer_input_are_refused_even_when_whole():
    out = conform.conform_inputs({"tokens": np.array([[3.0, 4.0]])}, requests.Signature("s", {"tokens": TOKENS}, {}))
    with pytest.raises(serving.BadRequestError, match='"tokens": expects int32 but float64 is provided'):
        requests.check_inputs(requests.Signature("s", {"tokens": TOKENS}, {}), out)


def test_a_ragged_list_is_refused_naming_the_input():
    with pytest.raises(serving.BadRequestError, match='input "sequences": cannot be made an array'):
        conform.conform_inputs({"sequences": [[[0.0, 1.0]], [[0.0]]]}, SIG)


def test_without_a_signature_floats_become_float32_and_integers_int32():
    out = conform.conform_inputs(
        {"sequences": [[[0.5, 1.0]]], "lengths": np.array([3], np.int64), "flags": np.array([True])}, None
    )
    assert out["sequences"].dtype == np.float32 and out["lengths"].dtype == np.int32
    assert out["flags"].dtype == np.bool_  # sent as it is
    with pytest.raises(serving.BadRequestError, match='"lengths": expects int32 but int64'):
        conform.conform_inputs({"lengths": np.array([2**40])}, None)


def test_unknown_inputs_are_only_made_arrays():
    out = conform.conform_inputs({"extra": [1.5]}, SIG)
    assert out["extra"].dtype == np.float64
    with pytest.raises(serving.BadRequestError, match=re.escape("Sent extra: {extra}")):
        requests.check_inputs(SIG, out)
