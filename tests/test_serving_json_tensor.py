"""serving.json_tensor on its own: TF Serving's REST JSON forms to TensorProtos and back, no server.

The request side is checked on what it builds (the TensorProtos, read back with ``serving.tensors``) and on what
it refuses (the message names the input, the value and what was expected); the response side on TF Serving's
shapes: row answers under "predictions" and columnar under "outputs", one output written bare and several as
objects, floats written as TF Serving's WriteDecimal writes them.
"""

from __future__ import annotations

import base64
import json

import grpc
import numpy as np
import pytest
from tensorflow_serving.apis import predict_pb2

from serving import tensors
from serving.admission import RequestLimits
from serving.errors import BadRequestError, ServingError, UnimplementedError
from serving.json_tensor import JsonFormat, fill_predict_request, predict_response_json
from serving.requests import Signature, TensorInfo
from serving.wire import DataType

F, I32, S = DataType.DT_FLOAT, DataType.DT_INT32, DataType.DT_STRING
SIGNATURES = {
    "serving_default": Signature("serving_default", {"sequences": TensorInfo(F, (None, None, 2))}, {}),
    "padded": Signature(
        "padded", {"sequences": TensorInfo(F, (None, None, 2)), "lengths": TensorInfo(I32, (None,))}, {}
    ),
    "text": Signature("text", {"words_bytes": TensorInfo(S, (None,))}, {}),
    "types": Signature(
        "types",
        {
            "d": TensorInfo(DataType.DT_DOUBLE, None),
            "b": TensorInfo(DataType.DT_BOOL, None),
            "i64": TensorInfo(DataType.DT_INT64, None),
            "u8": TensorInfo(DataType.DT_UINT8, None),
        },
        {},
    ),
    "half": Signature("half", {"h": TensorInfo(DataType.DT_HALF, None)}, {}),
}


def parse(doc: object) -> tuple[JsonFormat, dict[str, np.ndarray], str]:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "m"
    body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    form = fill_predict_request(body, lambda name: SIGNATURES[name or "serving_default"], request)
    return form, {k: tensors.to_array(v) for k, v in request.inputs.items()}, request.model_spec.signature_name


def refused(doc: object, *words: str) -> str:
    with pytest.raises(BadRequestError) as caught:
        parse(doc)
    for word in words:
        assert word in caught.value.details, caught.value.details
    assert len(caught.value.details) < 400
    return caught.value.details


X = [[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], [[0.5, 0.25], [0.0, -1.0], [2.0, 3.0]]]


def test_row_and_columnar_single_input():
    form, inputs, sig = parse({"instances": X})
    assert form is JsonFormat.ROW and sig == ""
    np.testing.assert_array_equal(inputs["sequences"], np.array(X, np.float32))
    assert inputs["sequences"].dtype == np.float32
    form, named, _ = parse({"instances": [{"sequences": row} for row in X]})
    np.testing.assert_array_equal(named["sequences"], inputs["sequences"])
    form, columnar, _ = parse({"inputs": X})
    assert form is JsonFormat.COLUMNAR
    np.testing.assert_array_equal(columnar["sequences"], inputs["sequences"])
    _, columnar, _ = parse({"inputs": {"sequences": X, "ignored": 1}})  # TF Serving ignores keys it does not need
    np.testing.assert_array_equal(columnar["sequences"], inputs["sequences"])


def test_multiple_named_inputs_and_signature_name():
    rows = [{"sequences": X[0], "lengths": 3}, {"sequences": X[1], "lengths": 1}]
    form, inputs, sig = parse({"signature_name": "padded", "instances": rows})
    assert sig == "padded" and form is JsonFormat.ROW
    np.testing.assert_array_equal(inputs["lengths"], np.array([3, 1], np.int32))
    assert inputs["lengths"].dtype == np.int32
    _, columnar, _ = parse({"signature_name": "padded", "inputs": {"sequences": X, "lengths": [3, 1]}})
    for name in inputs:
        np.testing.assert_array_equal(columnar[name], inputs[name])
    refused({"signature_name": "padded", "instances": X}, "plain list", "2 inputs", "{lengths,sequences}")
    refused({"signature_name": "padded", "inputs": X}, "plain value/list", "send an object")
    refused({"signature_name": "padded", "inputs": {"sequences": X}}, "Missing named input: lengths")
    refused({"signature_name": "padded", "instances": [rows[0], {"sequences": X[1]}]}, "element: 1", "{sequences}")
    refused({"signature_name": "padded", "instances": [rows[0], X[1]]}, "Expecting object but got Array at item 1")


def test_malformed_documents_are_refused_with_the_value_and_what_was_expected():
    refused(b"", "The document is empty")
    refused(b'{"instances": [1,', "JSON Parse error", "at offset")
    refused(b"[" * 100_000, "nests 100000 lists")  # counted on the bytes, refused before it is parsed
    refused(b"\xff\xfe\x00{", "JSON Parse error")
    refused(b"[1, 2]", "Is not object")
    refused({"instances": X, "inputs": X}, "only one of 'inputs'", "got both")
    refused({"signature_name": 3, "inputs": X}, "'signature_name' must be a string", "got 3 (Number)")
    refused({"instance": X}, "Missing 'inputs' or 'instances' key", "{instance}")
    refused({"instances": {"sequences": X}}, "'instances' to be a list", "Object")
    refused({"instances": []}, "No values in 'instances'")


def test_ragged_and_misnested_lists_are_refused():
    refused({"inputs": [[[1.0, 2.0], [3.0]]]}, 'input "sequences"', "list of 1 values at level 3, expected 2")
    refused({"inputs": [[[1.0, 2.0], 3.0]]}, "JSON value 3.0 found at level 3", "expected at level 4")
    refused({"inputs": [[[1.0, [2.0]], [3.0, 4.0]]]}, "list [2.0] found where a value was expected")
    refused({"instances": [X[0], X[1][:2]]}, "element: 1", "expecting shape [3, 2] (that of element 0) but got [2, 2]")
    deep = 1.0
    for _ in range(300):
        deep = [deep]
    refused({"inputs": deep}, "maximum rank 254")


def test_values_of_the_wrong_type_or_out_of_range_are_refused():
    refused({"inputs": [[["a", 2.0]]]}, 'JSON value "a" (String) is not of expected type float32')
    refused({"inputs": [[[True, 2.0]]]}, "true (Bool) is not of expected type float32")
    refused({"inputs": [[[None, 2.0]]]}, "null (Null)")
    refused({"inputs": [[[1e39, 2.0]]]}, "cannot convert JSON value 1e+39 to float32 without loss of precision")
    refused({"inputs": [[[2**24 + 1, 2.0]]]}, "16777217 to float32 without loss")
    refused(
        {"signature_name": "padded", "inputs": {"sequences": X, "lengths": [2**31, 1]}},
        "2147483648 is out of range for int32",
    )
    refused({"signature_name": "padded", "inputs": {"sequences": X, "lengths": [1.5, 1]}}, "1.5 (Number)", "int32")
    refused(
        {"inputs": [[[{"b64": "AAAA"}, 2.0]]]},
        '{"b64": ...} (base64 binary data) is only accepted for string',
        "float32",
    )
    # NaN and infinities are float values (TF Serving parses them too); 2**24 itself is exact.
    _, inputs, _ = parse(b'{"inputs": [[[NaN, Infinity], [-Infinity, 16777215]]]}')
    assert np.isnan(inputs["sequences"][0, 0, 0]) and inputs["sequences"][0, 1, 1] == 2**24 - 1


def test_other_dtypes_and_base64_strings():
    with pytest.raises(UnimplementedError, match='input "h": conversion of JSON values to float16 is not supported'):
        parse({"signature_name": "half", "inputs": 1.0})
    _, inputs, _ = parse(
        {
            "signature_name": "types",
            "inputs": {"d": [0.1, 2**53 - 1], "b": [True, False], "i64": [-(2**63), 5], "u8": [0, 255]},
        }
    )
    assert inputs["d"].dtype == np.float64 and inputs["d"][0] == 0.1
    assert inputs["b"].tolist() == [True, False] and inputs["i64"].tolist() == [-(2**63), 5]
    assert inputs["u8"].dtype == np.uint8 and inputs["u8"].tolist() == [0, 255]
    raw = bytes(range(256))
    _, inputs, _ = parse({"signature_name": "text", "instances": [{"b64": base64.b64encode(raw).decode()}, "plain"]})
    assert inputs["words_bytes"].tolist() == [raw, b"plain"]
    refused({"signature_name": "text", "inputs": [{"b64": "not base64!"}]}, "unable to base64 decode")


def response(outputs: dict[str, np.ndarray], form: JsonFormat) -> dict:
    protos = {name: tensors.to_proto(value) for name, value in outputs.items()}
    return json.loads(predict_response_json(protos, form))


def test_responses_take_tf_servings_shapes():
    y, h = np.array([[0.5], [1.5]], np.float32), np.array([[1, 2], [3, 4]], np.float32)
    assert response({"y": y}, JsonFormat.ROW) == {"predictions": [[0.5], [1.5]]}  # one output: the value itself
    assert response({"y": y}, JsonFormat.COLUMNAR) == {"outputs": [[0.5], [1.5]]}
    assert response({"y": y, "h": h}, JsonFormat.ROW) == {
        "predictions": [{"h": [1.0, 2.0], "y": [0.5]}, {"h": [3.0, 4.0], "y": [1.5]}]
    }
    assert response({"y": y, "h": h}, JsonFormat.COLUMNAR) == {
        "outputs": {"h": [[1.0, 2.0], [3.0, 4.0]], "y": [[0.5], [1.5]]}
    }
    assert response({"h": np.zeros((0, 4), np.float32)}, JsonFormat.COLUMNAR) == {"outputs": []}
    assert response({"h": np.zeros((2, 0), np.float32)}, JsonFormat.ROW) == {"predictions": [[], []]}
    assert response({"n": np.float32(2)}, JsonFormat.COLUMNAR) == {"outputs": 2.0}
    with pytest.raises(BadRequestError, match="has no shape information"):
        response({"n": np.float32(2)}, JsonFormat.ROW)
    with pytest.raises(BadRequestError, match="inconsistent batch size: 1 expecting: 2"):
        response({"a": y, "b": y[:1]}, JsonFormat.ROW)


def test_floats_are_written_as_tf_serving_writes_them():
    values = np.array([0.1, 1.0, 1e10, 3e-5, 1 / 3, np.nan, np.inf, -np.inf, 16777216.0], np.float32)
    text = predict_response_json({"v": tensors.to_proto(values)}, JsonFormat.COLUMNAR).decode()
    assert text == '{"outputs": [0.1,1.0,1e+10,3e-05,0.333333343,NaN,Infinity,-Infinity,16777216.0]}'
    back = np.array(json.loads(text)["outputs"], np.float32)
    np.testing.assert_array_equal(back[:5], values[:5])
    ints = predict_response_json(
        {"i": tensors.to_proto(np.array([[-3, 2**40]], np.int64)), "b": tensors.to_proto(np.array([[True]]))},
        JsonFormat.ROW,
    )
    assert json.loads(ints) == {"predictions": [{"b": [True], "i": [-3, 2**40]}]}
    words = predict_response_json(
        {
            "w_bytes": tensors.to_proto(np.array([b"\x00\xff"], object)),
            "w": tensors.to_proto(np.array([b"hi"], object)),
        },
        JsonFormat.COLUMNAR,
    )
    assert json.loads(words) == {"outputs": {"w": ["hi"], "w_bytes": [{"b64": "AP8="}]}}


# -- hostile input (issue 30) ----------------------------------------------------------------------------------
def write_decimal(value: float, digits: int) -> str:
    """TF Serving's WriteDecimal for one value, written plainly: the oracle of the bulk writer."""
    if value != value:
        return "NaN"
    if value in (np.inf, -np.inf):
        return "Infinity" if value > 0 else "-Infinity"
    text = f"{value:g}"
    if np.array(float(text), np.float32 if digits == 9 else np.float64) != value:
        text = f"{value:.{digits}g}"
    return text if "." in text or "e" in text else text + ".0"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_floats_written_in_bulk_equal_one_value_at_a_time(dtype):
    rng = np.random.default_rng(30)
    special = [
        0.0,
        -0.0,
        1.0,
        -1.0,
        1e5,
        1e6,
        123456.0,
        1234567.0,
        16777217.0,
        0.1,
        1 / 3,
        1e-7,
        3.4e38,
        1e-45,
        np.nan,
        np.inf,
        -np.inf,
        2.5,
        1e16,
        1e17,
    ]
    with np.errstate(over="ignore"):
        for values in [
            np.array(special),
            rng.normal(size=5000),
            rng.normal(size=6000).round() * 1e4,
            rng.standard_cauchy(size=3000),
            np.exp(rng.normal(scale=60, size=3000)),
            np.zeros(10_000),
            np.repeat(rng.normal(size=10), 1000),
            np.tile(special, 300),
        ]:
            cast = values.astype(dtype)
            text = predict_response_json({"v": tensors.to_proto(cast)}, JsonFormat.COLUMNAR).decode()
            digits = 9 if dtype == np.float32 else 17
            assert text == '{"outputs": [' + ",".join(write_decimal(v, digits) for v in cast.tolist()) + "]}"


def test_json_that_rapidjson_refuses_is_refused():
    refused({"signature_name": "\ud800", "inputs": X}, "The surrogate pair in string is invalid")
    refused(b'{"signature_name": "\\udfff", "inputs": []}', "The surrogate pair in string is invalid")
    refused(b'{"signature_name": "\xed\xa0\x80", "inputs": []}', "Invalid encoding in string")
    refused(json.dumps({"inputs": X}).encode("utf-16"), "Invalid encoding in string")
    refused(b'{"inputs": [[[1e400, 1.0]]]}', "Number too big to be stored in double")
    refused(b'{"signature_name": "types", "inputs": {"d": -1e400, "b": true, "i64": 1, "u8": 1}}', "Number too big")
    _, inputs, _ = parse(b'{"inputs": [[[Infinity, -Infinity]]]}')
    assert inputs["sequences"].tolist() == [[[np.inf, -np.inf]]]
    with pytest.raises(KeyError, match="\U0001f600"):  # a valid pair, and an escaped backslash, are text: looked up
        parse(b'{"signature_name": "\\ud83d\\ude00", "inputs": []}')
    with pytest.raises(KeyError, match=r"\\\\ud800"):
        parse(b'{"signature_name": "\\\\ud800", "inputs": []}')


def test_repeated_keys_keep_the_first_value_as_tf_serving_looks_it_up():
    _, inputs, _ = parse(b'{"inputs": ' + json.dumps(X).encode() + b', "inputs": "second"}')
    np.testing.assert_array_equal(inputs["sequences"], np.array(X, np.float32))


def test_bodies_over_the_limits_are_refused_before_tensors_are_built():
    limits = RequestLimits(max_elements=100, max_sequence_length=8)

    def refused_within(body: bytes, *words: str) -> None:
        with pytest.raises(BadRequestError) as caught:
            fill_predict_request(body, lambda name: SIGNATURES["serving_default"], predict_pb2.PredictRequest(), limits)
        for word in words:
            assert word in caught.value.details, caught.value.details

    values = json.dumps({"inputs": np.zeros((1, 90, 2)).tolist()}).encode()  # 180 values: counted on the bytes
    refused_within(values, "the body holds 180 JSON values, over the server's limit of 100 elements")
    refused_within(b'{"inputs": [' + b"[], " * 2000 + b"[]]}", "nests 2003 lists or objects around 0 values")
    strings = json.dumps({"inputs": [[[0.5, 0.5]]], "note": "[], " * 1000 + ",,," * 1000}).encode()
    fill_predict_request(strings, lambda name: SIGNATURES["serving_default"], predict_pb2.PredictRequest(), limits)
    refused_within(json.dumps({"inputs": np.zeros((5, 9, 2)).tolist()}).encode(), "sequence length 9")
    refused_within(json.dumps({"inputs": np.zeros((7, 8, 2)).tolist()}).encode(), "112 elements")


def test_answers_over_max_bytes_are_refused_before_they_are_written():
    h = {"c": tensors.to_proto(np.zeros((1000, 4), np.float32)), "h": tensors.to_proto(np.zeros((1000, 4), np.float32))}
    columnar = predict_response_json(h, JsonFormat.COLUMNAR, max_bytes=40_000)
    assert len(columnar) <= 40_000  # 8,000 values of "0.0,": 32,000 bytes and the brackets
    with pytest.raises(ServingError, match="would take at least 46000 bytes") as caught:  # and 14 of keys a row
        predict_response_json(h, JsonFormat.ROW, max_bytes=40_000)
    assert caught.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    with pytest.raises(ServingError, match=f"would take {len(columnar)} bytes"):
        predict_response_json(h, JsonFormat.COLUMNAR, max_bytes=len(columnar) - 1)


def test_a_utf8_byte_order_mark_is_skipped_as_rapidjson_skips_it():
    _, inputs, _ = parse(b"\xef\xbb\xbf" + json.dumps({"inputs": X}).encode())
    np.testing.assert_array_equal(inputs["sequences"], np.array(X, np.float32))
