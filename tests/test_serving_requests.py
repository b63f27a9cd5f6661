"""The pure parts of serving: tensors, request building, input checks, errors, configs.
No network here; everything that talks gRPC is tested against a real server elsewhere."""

from __future__ import annotations

import argparse
from pathlib import Path

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import types_pb2
from tensorflow_serving.apis import model_pb2

import serving
from serving import cli, errors, requests, tensors
from serving.batching import BatchingOptions
from serving.config_protos import BatchingParameters
from serving.manager import ModelManager
from serving.model_config import ModelSource, Mount, VersionPolicy, load_model_config

SIG = requests.Signature(
    name="padded",
    inputs={
        "sequences": requests.TensorInfo(types_pb2.DT_FLOAT, (None, None, 3)),
        "lengths": requests.TensorInfo(types_pb2.DT_INT32, (None,)),
    },
    outputs={"outputs": requests.TensorInfo(types_pb2.DT_FLOAT, (None, 1))},
)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16, np.int32, np.int64, np.uint8, np.bool_])
def test_tensor_round_trip_and_tf_agrees(dtype):
    array = (np.arange(12).reshape(3, 4) % 3).astype(dtype)
    proto = tensors.to_proto(array)
    np.testing.assert_array_equal(tensors.to_array(proto), array)
    np.testing.assert_array_equal(tf.make_ndarray(proto), array)  # TF reads ours
    np.testing.assert_array_equal(tensors.to_array(tf.make_tensor_proto(array)), array)  # we read TF's


@pytest.mark.parametrize("layout", ["big-endian", "fortran-order", "strided view", "scalar", "empty"])
def test_tensor_bytes_are_little_endian_c_order_whatever_the_array(layout):
    base = np.arange(24, dtype=np.float32).reshape(4, 6)
    array = {
        "big-endian": base.astype(">f4"),
        "fortran-order": np.asfortranarray(base),
        "strided view": base[::2, ::3],
        "scalar": np.float32(7.0),
        "empty": base[:0],
    }[layout]
    proto = tensors.to_proto(array)
    assert [d.size for d in proto.tensor_shape.dim] == list(np.shape(array))
    np.testing.assert_array_equal(tf.make_ndarray(proto), array)  # TensorFlow reads the same values
    back = tensors.to_array(proto)
    np.testing.assert_array_equal(back, array)
    assert back.dtype == np.float32 and back.dtype.isnative


def test_typed_value_fields_and_broadcast():
    proto = tf.make_tensor_proto(np.float32(2.5), shape=[2, 2])  # one float_val, repeated
    np.testing.assert_array_equal(tensors.to_array(proto), np.full((2, 2), 2.5, np.float32))
    proto = tf.make_tensor_proto(np.array([1.0, 2.0], np.float16))
    np.testing.assert_array_equal(tensors.to_array(proto), [1.0, 2.0])


def test_model_spec_and_sequence_inputs():
    with pytest.raises(ValueError, match="not both"):
        requests.model_spec("m", version=1, version_label="stable")
    spec = requests.model_spec("m", version_label="stable", signature="padded")
    assert spec.WhichOneof("version_choice") == "version_label" and spec.signature_name == "padded"
    assert requests.sequence_inputs([[[1.0, 2.0, 3.0]]], None)[0] == "serving_default"
    signature, inputs = requests.sequence_inputs(np.zeros((2, 3, 3), np.float32), [3, 1])
    assert signature == "padded" and inputs["lengths"] == [3, 1]  # converted later, by serving.conform


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({"sequences": np.zeros((2, 4, 3), np.float32)}, "Missing but required: {lengths}"),
        (
            {"sequences": np.zeros((2, 4, 3)), "lengths": np.ones(2, np.int32)},
            '"sequences": expects float32 but float64',
        ),
        ({"sequences": np.zeros((2, 4), np.float32), "lengths": np.ones(2, np.int32)}, '"sequences": expects rank 3'),
        (
            {"sequences": np.zeros((2, 4, 5), np.float32), "lengths": np.ones(2, np.int32)},
            '"sequences": feature size must be 3',
        ),
        ({"sequences": np.zeros((2, 4, 3), np.float32), "lengths": np.ones(3, np.int32)}, "equal 0th-dimension"),
    ],
)
def test_check_inputs_names_the_input(inputs, message):
    with pytest.raises(serving.BadRequestError, match=message) as info:
        requests.check_inputs(SIG, inputs)
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT


def test_check_inputs_lets_an_empty_batch_through():
    """TF Serving answers a batch of 0 rows with empty outputs, so the client does not refuse it."""
    requests.check_inputs(SIG, {"sequences": np.zeros((0, 4, 3), np.float32), "lengths": np.ones(0, np.int32)})


def test_error_classes_keep_the_code():
    assert errors.error_class_for(grpc.StatusCode.NOT_FOUND) is serving.ModelNotFoundError
    assert errors.error_class_for(grpc.StatusCode.DATA_LOSS) is serving.ServingError
    err = serving.DeadlineExceededError("slow", code=grpc.StatusCode.DEADLINE_EXCEEDED)
    assert isinstance(err, TimeoutError) and err.code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert errors.status_code(5) == grpc.StatusCode.NOT_FOUND


def test_version_policies():
    assert VersionPolicy(num_versions=2).choose([1, 3, 2]) == {2, 3}
    assert VersionPolicy(kind="all").choose([1, 2]) == {1, 2}
    assert VersionPolicy(kind="specific", versions=frozenset({1, 5})).choose([1, 2]) == {1}


def test_base_paths_resolve_like_the_container_mount(tmp_path):
    (tmp_path / "m.config").write_text(
        'model_config_list { config { name: "a" base_path: "/models/a" model_platform: "tensorflow" } '
        'config { name: "b" base_path: "rel/b" model_platform: "tensorflow" } '
        'config { name: "c" base_path: "/elsewhere/c" model_platform: "tensorflow" } }'
    )
    a, b, c = load_model_config(tmp_path / "m.config")
    assert (a.base_path, b.base_path, c.base_path) == (tmp_path / "a", tmp_path / "rel" / "b", Path("/elsewhere/c"))
    (a, *_) = load_model_config(tmp_path / "m.config", [Mount.parse(f"{tmp_path}/x:/models")])
    assert a.base_path == tmp_path / "x" / "a"


def test_cli_single_model_flags(tmp_path):
    parser = argparse.ArgumentParser()
    cli.configure(parser)
    args = parser.parse_args(["--model-base", str(tmp_path), "--model-name", "adding"])
    assert args.host == "127.0.0.1" and args.port == 8500
    (source,) = cli._sources(args)
    assert (source.name, source.base_path, source.policy.describe()) == ("adding", tmp_path, "latest 1")


_DURATION_FLAGS = ("--drain-seconds", "--grace-seconds")
_THREAD_FLAGS = ("--tensorflow-intra-op-parallelism", "--tensorflow-inter-op-parallelism")


@pytest.mark.parametrize(
    ("flag", "value", "expected"),
    [
        *[
            (flag, value, "expected a number of seconds, 0 or more")
            for flag in _DURATION_FLAGS
            for value in ("-1", "soon", "nan")
        ],
        *[
            (flag, value, "expected a whole number of threads, 0 (TensorFlow picks) or more")
            for flag in _THREAD_FLAGS
            for value in ("-1", "two", "1.5")
        ],
    ],
)
def test_cli_numbers_are_checked(tmp_path, capsys, flag, value, expected):
    parser = argparse.ArgumentParser()
    cli.configure(parser)
    with pytest.raises(SystemExit):
        parser.parse_args(["--model-base", str(tmp_path), "--model-name", "adding", flag, value])
    assert f"argument {flag}: got '{value}'; {expected}" in capsys.readouterr().err


def test_batching_options_default_like_tf_serving():
    options = BatchingOptions.from_proto(BatchingParameters(max_batch_size={"value": 8}))
    assert options.max_batch_size == 8 and options.max_enqueued_batches == 10


def test_manager_errors_without_models(tmp_path):
    manager = ModelManager([ModelSource("a", tmp_path)], poll_s=0)
    manager.start()
    with (
        pytest.raises(serving.ModelNotFoundError, match=r"Latest\(a\)"),
        manager.acquire(model_pb2.ModelSpec(name="a")),
    ):
        pass
    with pytest.raises(serving.ModelNotFoundError, match="Could not find any versions of model b"):
        manager.status(model_pb2.ModelSpec(name="b"))
