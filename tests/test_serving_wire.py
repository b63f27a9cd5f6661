"""The client's wire format without TensorFlow (serving.wire), checked against TensorFlow's own.

Oracles: the installed tensorflow-serving-api's descriptors (field by field), `tf.make_ndarray` and
`tf.make_tensor_proto` (every dtype the server accepts), and TensorFlow's message classes parsing our bytes.
The sans-I/O core is driven by hand here, with no network: its plans are plain generators.
"""

from __future__ import annotations

import importlib
import importlib.util
import subprocess
import sys
import textwrap

import grpc
import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import descriptor_pool
from serving_helpers import REPO
from tensorflow_serving.apis import (  # the services import every other file the client carries
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2,  # noqa: F401
    predict_pb2,
    prediction_service_pb2,  # noqa: F401
)

import serving
from serving import tensors, wire
from serving.core import Call, ClientOptions, Core, Done, Sleep, advance
from serving.wire_descriptors import FILES


def _extract_script():
    spec = importlib.util.spec_from_file_location("extract_protos", REPO / "clients" / "python" / "extract_protos.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- the descriptors are TF Serving's ------------------------------------------------------------
def _field(f) -> dict:
    return {
        "name": f.name,
        "full_name": f.full_name,
        "number": f.number,
        "type": f.type,
        "repeated": f.is_repeated,
        "required": f.is_required,
        "packed": f.is_packed,
        "presence": f.has_presence,
        "message_type": f.message_type.full_name if f.message_type else None,
        "enum_type": f.enum_type.full_name if f.enum_type else None,
        "oneof": f.containing_oneof.name if f.containing_oneof else None,
        "json_name": f.json_name,
        "has_default": f.has_default_value,
        "default": f.default_value if f.has_default_value else None,
        "options": f.GetOptions().SerializeToString(deterministic=True),
    }


def _enum_differences(ours, theirs, where: str) -> list[str]:
    """Enums declared in a message or a file: the same names, each with the same values."""
    values = lambda e: [(v.name, v.number) for v in e.values]  # noqa: E731
    if set(ours.enum_types_by_name) != set(theirs.enum_types_by_name):
        return [f"{where}: enums {sorted(ours.enum_types_by_name)} != {sorted(theirs.enum_types_by_name)}"]
    return [
        f"{where}.{name}: enum values differ"
        for name, enum in theirs.enum_types_by_name.items()
        if values(ours.enum_types_by_name[name]) != values(enum)
    ]


def _differences(ours, theirs, where: str) -> list[str]:
    """Every difference between two message descriptors, nested types and enums included."""
    diffs = []
    if ours.full_name != theirs.full_name:
        return [f"{where}: {ours.full_name} != {theirs.full_name}"]
    if set(ours.fields_by_name) != set(theirs.fields_by_name):
        diffs.append(f"{where}: fields {sorted(ours.fields_by_name)} != {sorted(theirs.fields_by_name)}")
    for name in set(ours.fields_by_name) & set(theirs.fields_by_name):
        a, b = _field(ours.fields_by_name[name]), _field(theirs.fields_by_name[name])
        diffs += [f"{where}.{name}.{k}: {a[k]!r} != {b[k]!r}" for k in a if a[k] != b[k]]
    diffs += _enum_differences(ours, theirs, where)
    if set(ours.nested_types_by_name) != set(theirs.nested_types_by_name):
        diffs.append(f"{where}: nested types differ")
    for name in set(ours.nested_types_by_name) & set(theirs.nested_types_by_name):
        diffs += _differences(ours.nested_types_by_name[name], theirs.nested_types_by_name[name], f"{where}.{name}")
    return diffs


@pytest.mark.parametrize("path", list(FILES))
def test_every_message_equals_tensorflow_serving_field_by_field(path):
    theirs = descriptor_pool.Default().FindFileByName(path)
    ours = wire.POOL.FindFileByName(path)
    assert ours.serialized_pb == theirs.serialized_pb
    assert set(ours.message_types_by_name) == set(theirs.message_types_by_name)
    diffs = [
        d
        for name, message in theirs.message_types_by_name.items()
        for d in _differences(ours.message_types_by_name[name], message, name)
    ]
    diffs += _enum_differences(ours, theirs, path)
    assert not diffs, "\n".join(diffs) + "\nrun clients/python/extract_protos.py"
    for name, service in theirs.services_by_name.items():
        mine = ours.services_by_name[name]
        assert [(m.name, m.input_type.full_name, m.output_type.full_name) for m in mine.methods] == [
            (m.name, m.input_type.full_name, m.output_type.full_name) for m in service.methods
        ]


def test_the_committed_descriptors_are_what_the_script_extracts_now():
    assert _extract_script().main(["--check"]) == 0, "run clients/python/extract_protos.py"


def test_the_client_pool_is_its_own_and_speaks_the_same_bytes():
    assert wire.POOL is not descriptor_pool.Default()
    assert wire.PredictRequest is not predict_pb2.PredictRequest
    ours = serving.requests.predict_request(
        "adding", {"sequences": np.ones((1, 2, 3), np.float32)}, signature="padded", version=3
    )
    theirs = predict_pb2.PredictRequest.FromString(ours.SerializeToString())
    assert theirs.model_spec.version.value == 3 and theirs.model_spec.signature_name == "padded"
    np.testing.assert_array_equal(tf.make_ndarray(theirs.inputs["sequences"]), np.ones((1, 2, 3), np.float32))
    status = get_model_status_pb2.GetModelStatusResponse()
    status.model_version_status.add(version=2, state=get_model_status_pb2.ModelVersionStatus.AVAILABLE)
    answer = wire.GET_MODEL_STATUS.response.FromString(status.SerializeToString())
    assert serving.requests.parse_status(answer)[0].state == "AVAILABLE"
    assert wire.PREDICT.path == "/tensorflow.serving.PredictionService/Predict"


def test_metadata_any_unpacks_across_the_two_pools():
    sig_map = get_model_metadata_pb2.SignatureDefMap()
    info = sig_map.signature_def["padded"].inputs["lengths"]
    info.dtype = tf.int32.as_datatype_enum
    info.tensor_shape.dim.add(size=-1)
    response = get_model_metadata_pb2.GetModelMetadataResponse()
    response.model_spec.name, response.model_spec.version.value = "adding", 7
    response.metadata["signature_def"].Pack(sig_map)
    meta = serving.requests.parse_metadata(wire.GetModelMetadataResponse.FromString(response.SerializeToString()))
    assert meta.version == 7
    assert meta.signatures["padded"].inputs["lengths"] == serving.TensorInfo(tf.int32.as_datatype_enum, (None,))


# -- NumPy <-> TensorProto, exact for every dtype ---------------------------------------------------
def _extremes(dtype: np.dtype) -> np.ndarray:
    if dtype == np.bool_:
        return np.array([[True, False, True], [False, False, True]])
    if dtype.kind == "f":
        info = np.finfo(dtype)
        return np.array([[info.min, info.max, info.tiny], [-0.0, np.inf, np.nan]], dtype)
    info = np.iinfo(dtype)
    return np.array([[info.min, info.max, 0], [1, info.max - 1, info.min + 1]], dtype)


SERVER_DTYPES = [
    np.dtype(d)
    for d in (
        np.float32,
        np.float64,
        np.float16,
        np.int8,
        np.int16,
        np.int32,
        np.int64,
        np.uint8,
        np.uint16,
        np.uint32,
        np.uint64,
        np.bool_,
    )
]


@pytest.mark.parametrize("dtype", SERVER_DTYPES, ids=str)
def test_tensor_bits_equal_tensorflow_for_every_dtype(dtype):
    array = _extremes(dtype)
    tf_proto_class = type(tf.make_tensor_proto(0.0))
    ours = tensors.to_proto(array)
    assert ours.dtype == tf.as_dtype(dtype).as_datatype_enum
    read_by_tf = tf.make_ndarray(tf_proto_class.FromString(ours.SerializeToString()))  # TF reads our bytes
    made_by_tf = tf.make_tensor_proto(array)  # typed *_val fields or tensor_content, TF's choice
    for got in (
        read_by_tf,
        tensors.to_array(made_by_tf),
        tensors.to_array(wire.TensorProto.FromString(made_by_tf.SerializeToString())),
        tensors.to_array(ours),
    ):
        assert got.dtype == dtype and got.shape == array.shape
        assert got.tobytes() == array.tobytes()  # bit for bit: NaN, -0.0 and the extremes included


def test_strings_match_tensorflow():
    array = np.array([[b"a", b"\x00\xff"], [b"", "\u00e9".encode()]], dtype=object)
    ours = tensors.to_proto(array)
    np.testing.assert_array_equal(
        tf.make_ndarray(type(tf.make_tensor_proto(0.0)).FromString(ours.SerializeToString())), array
    )
    np.testing.assert_array_equal(tensors.to_array(tf.make_tensor_proto(array)), array)


def test_to_proto_fills_a_tensorflow_message_in_place():
    response = predict_pb2.PredictResponse()
    tensors.to_proto(np.arange(6, dtype=np.float32).reshape(2, 3), into=response.outputs["outputs"])
    np.testing.assert_array_equal(tf.make_ndarray(response.outputs["outputs"]), np.arange(6).reshape(2, 3))


# -- living beside TensorFlow ------------------------------------------------------------------------
_CLIENT_FIRST = "from serving import Client, tensors, wire\n"
_TF_FIRST = (
    "import tensorflow as tf\nfrom tensorflow_serving.apis import model_service_pb2, predict_pb2, "
    "prediction_service_pb2_grpc\n"
)
_BOTH = textwrap.dedent("""
    import numpy as np
    import tensorflow as tf
    from google.protobuf import descriptor_pool
    from tensorflow_serving.apis import model_service_pb2, predict_pb2, prediction_service_pb2_grpc
    from serving import Client, requests, tensors, wire

    x = np.arange(6, dtype=np.float32).reshape(1, 2, 3)
    ours = requests.predict_request("m", {"sequences": x})
    theirs = predict_pb2.PredictRequest.FromString(ours.SerializeToString())
    assert theirs == predict_pb2.PredictRequest.FromString(theirs.SerializeToString())
    assert (tf.make_ndarray(theirs.inputs["sequences"]) == x).all()
    assert (tensors.to_array(tf.make_tensor_proto(x)) == x).all()
    default_pool = descriptor_pool.Default()
    assert default_pool.FindMessageTypeByName("tensorflow.TensorProto") is tf.make_tensor_proto(x).DESCRIPTOR
    assert wire.TensorProto.DESCRIPTOR.file.pool is wire.POOL
    Client("127.0.0.1:1", model="m").close()
    print("ok")
""")


@pytest.mark.parametrize("first", [_CLIENT_FIRST, _TF_FIRST], ids=["client first", "tensorflow first"])
def test_client_and_tensorflow_share_a_process_in_either_order(first):
    result = subprocess.run(
        [sys.executable, "-c", first + _BOTH], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-3000:]


# -- the sans-I/O core, driven by hand ----------------------------------------------------------------
class _Status(grpc.RpcError):
    """What a failed gRPC call raises: an RpcError with a code() and details()."""

    def __init__(self, code: grpc.StatusCode) -> None:
        self._code = code

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return f"{self._code.name} from the test"


def _core(**options) -> Core:
    return Core(["a:1", "b:2", "c:3"], model="adding", options=ClientOptions(**options))


def test_unavailable_is_retried_on_the_next_target_then_raised_typed():
    plan = _core(max_attempts=3, backoff_s=0.01, backoff_max_s=0.01).status(timeout_s=30)
    first = advance(plan)
    assert isinstance(first, Call) and first.method is wire.GET_MODEL_STATUS and first.target == 0
    ops = [first]
    for _ in range(2):
        pause = advance(plan, error=_Status(grpc.StatusCode.UNAVAILABLE))
        assert isinstance(pause, Sleep) and 0.005 <= pause.seconds <= 0.01
        ops.append(advance(plan))
    assert [op.target for op in ops] == [0, 1, 2] and all(0 < op.timeout_s <= 30 for op in ops)
    with pytest.raises(serving.UnavailableError) as info:
        advance(plan, error=_Status(grpc.StatusCode.UNAVAILABLE))
    assert isinstance(info.value.__cause__, _Status)


@pytest.mark.parametrize(
    ("code", "error"),
    [
        (grpc.StatusCode.INVALID_ARGUMENT, serving.BadRequestError),
        (grpc.StatusCode.NOT_FOUND, serving.ModelNotFoundError),
        (grpc.StatusCode.DEADLINE_EXCEEDED, serving.DeadlineExceededError),
    ],
)
def test_other_errors_are_never_retried(code, error):
    plan = _core().status()
    advance(plan)
    with pytest.raises(error) as info:
        advance(plan, error=_Status(code))
    assert info.value.code == code


def test_predict_plan_fetches_metadata_once_checks_inputs_then_parses():
    core = _core()
    x = np.zeros((2, 4, 3), np.float32)
    sig_map = wire.SignatureDefMap()
    for name, dtype in (("sequences", wire.DataType.DT_FLOAT), ("lengths", wire.DataType.DT_INT32)):
        sig_map.signature_def["padded"].inputs[name].dtype = dtype
        sig_map.signature_def["padded"].inputs[name].tensor_shape.unknown_rank = True
    metadata = wire.GetModelMetadataResponse()
    metadata.model_spec.version.value = 1
    metadata.metadata["signature_def"].Pack(sig_map)
    answer = wire.PredictResponse()
    tensors.to_proto(np.ones((2, 1), np.float32), into=answer.outputs["outputs"])

    plan = core.predict(x, [4, 2])
    fetch = advance(plan)
    assert fetch.method is wire.GET_MODEL_METADATA and list(fetch.request.metadata_field) == ["signature_def"]
    send = advance(plan, metadata)
    assert send.method is wire.PREDICT and send.request.model_spec.signature_name == "padded"
    assert tensors.to_array(send.request.inputs["lengths"]).tolist() == [4, 2]
    done = advance(plan, answer)
    assert isinstance(done, Done) and done.value["outputs"].tolist() == [[1.0], [1.0]]

    again = core.predict(x, [4, 2])  # cached metadata: straight to Predict
    assert advance(again).method is wire.PREDICT
    converted = advance(core.predict(x.astype(np.float64), np.array([4, 2], np.int64)))  # serving.conform
    assert tensors.to_array(converted.request.inputs["sequences"]).dtype == np.float32
    assert tensors.to_array(converted.request.inputs["lengths"]).dtype == np.int32
    with pytest.raises(serving.BadRequestError, match="expects float32 but bool"):
        advance(core.predict(x > 0, [4, 2]))  # checked before anything is sent


def test_a_closed_core_refuses_calls():
    core = _core()
    core.closed = True
    with pytest.raises(ValueError, match="closed"):
        advance(core.metadata())


def test_the_client_modules_import_no_tensorflow():
    code = (
        "import sys\nfrom serving import Client, AsyncClient\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'tensorflow_serving', 'keras')))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.strip() == "[]", result.stderr[-2000:]


def test_the_client_distribution_lists_every_module_the_client_imports():
    pyproject = (REPO / "clients" / "python" / "pyproject.toml").read_text()
    code = (
        "import sys\nimport serving\nprint(' '.join(sorted(m for m in sys.modules "
        "if m == 'serving' or m.startswith('serving.'))))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    imported = result.stdout.split()
    assert imported and all(f'"{m if "." in m else m + ".__init__"}"' in pyproject for m in imported), imported
    assert importlib.import_module("serving.wire").POOL.FindFileByName("tensorflow/core/framework/tensor.proto")
