"""The client against a real local server process, over a real socket.

One server for the module (TensorFlow takes seconds to import): four models configured
on two base paths, batching on, a 1 MiB message limit and fast polling. Every version served is
this project's own export (`keras_lstm.export`), and the oracle is the Keras model it came from.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import http.client
import json
import signal
import time

import grpc
import numpy as np
import pytest
import tensorflow as tf
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from serving_helpers import FEATURES, ServerProcess, copy_version, export_version, free_port, reference
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    predict_pb2,
    prediction_service_pb2_grpc,
)

import serving
from serving import AsyncClient, Client

pytestmark = pytest.mark.timeout(180)

CONFIG = """
model_config_list {
  config { name: "adding" base_path: "/models/adding" model_platform: "tensorflow" }
  config {
    name: "adding_all" base_path: "/models/adding" model_platform: "tensorflow"
    model_version_policy { all {} }
    version_labels { key: "stable" value: 1 }
    version_labels { key: "canary" value: 2 }
  }
  config {
    name: "adding_pinned" base_path: "/models/adding" model_platform: "tensorflow"
    model_version_policy { specific { versions: 1 } }
  }
  config { name: "nostream" base_path: "nostream" model_platform: "tensorflow" }
}
"""
BATCHING = """
max_batch_size { value: 32 }
batch_timeout_micros { value: 2000 }
num_batch_threads { value: 2 }
max_enqueued_batches { value: 1000 }
"""
MAX_MESSAGE_BYTES = 1 << 20


@pytest.fixture(scope="module")
def versions(tmp_path_factory):
    """Two versions of the small model, exported once, and the Keras model of each (the oracle)."""
    root = tmp_path_factory.mktemp("exports")
    models = {v: export_version(root / str(v), seed=v) for v in (1, 2)}
    return {v: root / str(v) for v in models}, models


@pytest.fixture(scope="module")
def server(tmp_path_factory, versions):
    work = tmp_path_factory.mktemp("server")
    models = work / "models"
    (models / "adding").mkdir(parents=True)
    copy_version(versions[0][1], models / "adding" / "1")
    (work / "nostream").mkdir()
    export_version(work / "nostream" / "1", seed=3, streamable=False)
    (work / "models.config").write_text(CONFIG)
    (work / "batching.config").write_text(BATCHING)
    proc = ServerProcess(
        [
            "--model-config",
            str(work / "models.config"),
            "--mount",
            f"{models}:/models",
            "--batching-parameters-file",
            str(work / "batching.config"),
            "--file-system-poll-wait-seconds",
            "0.2",
            "--max-message-bytes",
            str(MAX_MESSAGE_BYTES),
            "--tensorflow-intra-op-parallelism",
            "2",
            "--tensorflow-inter-op-parallelism",
            "1",
        ],
        work,
    )
    try:
        proc.wait_listening()
        proc.models = models
        yield proc
    finally:
        assert proc.terminate() == 0, proc.log()


@pytest.fixture(scope="module")
def client(server):
    with Client(server.target, model="adding", timeout_s=10.0) as c:
        c.wait_until_ready(timeout_s=60)
        yield c


def seqs(batch=2, time_=5, seed=0):
    return np.random.default_rng(seed).normal(size=(batch, time_, FEATURES)).astype(np.float32)


# -- correctness -----------------------------------------------------------------------------
def test_predict_equals_in_process(client, versions):
    x = seqs()
    got, want = client.predict(x), reference(versions[1][1], x)
    assert set(got) == {"outputs", "h", "c"}
    for name in want:
        np.testing.assert_allclose(got[name], want[name], atol=1e-5)


def test_lengths_use_the_padded_signature(client, versions):
    x, lengths = seqs(batch=3, time_=6), np.array([6, 2, 4], np.int32)
    got = client.predict(x, lengths=lengths)
    want = reference(versions[1][1], x, lengths)
    for name in want:
        np.testing.assert_allclose(got[name], want[name], atol=1e-5)
    # A row cut at length 2 equals that row's first two steps run alone.
    np.testing.assert_allclose(got["h"][1:2], client.predict(x[1:2, :2])["h"], atol=1e-5)


def test_stream_equals_whole_sequence(client):
    x = seqs(batch=2, time_=7, seed=4)
    whole = client.predict(x)
    with client.stream(batch_size=2) as s:
        ys = [s.step(x[:, t]) for t in range(x.shape[1])]
    np.testing.assert_allclose(ys[-1], whole["outputs"], atol=1e-5)
    np.testing.assert_allclose(s.state.h, whole["h"], atol=1e-5)
    np.testing.assert_allclose(s.state.c, whole["c"], atol=1e-5)


def test_the_client_takes_what_users_hand_it(server, client):
    """float64 arrays, Python lists, int64 lengths and integer features reach the server as the signature's
    float32 / int32 (serving.conform), with the sync client, a client without validation and a stream;
    what cannot be converted value-safely is refused before sending, naming the input and both dtypes."""
    x = seqs(batch=2, time_=4, seed=9)
    want = client.predict(x, lengths=np.array([4, 3], np.int32))
    as_given = client.predict(x.astype(np.float64).tolist(), lengths=np.array([4, 3], np.int64))
    np.testing.assert_array_equal(as_given["outputs"], want["outputs"])
    with Client(server.target, model="adding", validate=False) as unchecked:  # no metadata: float32 / int32
        np.testing.assert_array_equal(
            unchecked.predict(x.astype(np.float64), lengths=[4, 3])["outputs"], want["outputs"]
        )
    integers = np.arange(2 * 4 * FEATURES, dtype=np.int64).reshape(2, 4, FEATURES) % 3 - 1
    np.testing.assert_array_equal(
        client.predict(integers)["outputs"], client.predict(integers.astype(np.float32))["outputs"]
    )
    with client.stream(batch_size=2) as s:
        for t in range(x.shape[1]):
            y = s.step(x[:, t].astype(np.float64).tolist())
    np.testing.assert_allclose(y, client.predict(x)["outputs"], atol=1e-5)
    with pytest.raises(
        serving.BadRequestError,
        match='"sequences": expects float32 but int64 is provided, and converting it would change a value: 16777217',
    ):
        client.predict(np.full((1, 2, FEATURES), 2**24 + 1, np.int64))
    with pytest.raises(serving.BadRequestError, match=r'"lengths": expects int32 but int64 .* out of int32'):
        client.predict(x, lengths=[4, 2**40])


def test_stream_needs_step_signature(server):
    with (
        Client(server.target, model="nostream") as c,
        pytest.raises(serving.StreamingNotSupportedError, match="no step / init_state"),
    ):
        c.stream()


def test_metadata_and_status(client):
    meta = client.metadata()
    assert meta.name == "adding" and meta.version == 1
    assert set(meta.signatures) == {"serving_default", "padded", "step", "init_state"}
    seq = meta.signatures["serving_default"].inputs["sequences"]
    assert seq.shape == (None, None, FEATURES) and seq.describe() == "float32[?, ?, 3]"
    assert [(v.version, v.state) for v in client.status()] == [(1, "AVAILABLE")]


def test_tensorflow_thread_flags_reach_tensorflow(server, client):
    # Set before the first model loaded (TensorFlow refuses a change after its runtime started).
    assert "tensorflow threads: intra-op 2, inter-op 1" in server.log()


def test_warmup_requests_are_replayed(server, client):
    assert "model adding version 1: replayed 4 warmup requests" in server.log()


def test_raw_stub_as_any_tf_serving_user_writes_it(server):
    channel = grpc.insecure_channel(server.target)
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "adding"
    request.model_spec.signature_name = "serving_default"
    request.inputs["sequences"].CopyFrom(tf.make_tensor_proto(seqs(batch=1)))
    response = stub.Predict(request, timeout=10.0)
    assert response.model_spec.version.value == 1
    assert tf.make_ndarray(response.outputs["outputs"]).shape == (1, 1)
    meta = stub.GetModelMetadata(
        get_model_metadata_pb2.GetModelMetadataRequest(model_spec=request.model_spec, metadata_field=["signature_def"]),
        timeout=10.0,
    )
    sig_map = get_model_metadata_pb2.SignatureDefMap()
    meta.metadata["signature_def"].Unpack(sig_map)
    assert "padded" in sig_map.signature_def
    channel.close()


def test_health_reflection_and_unimplemented(server):
    with grpc.insecure_channel(server.target) as channel:
        health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        reflect = reflection_pb2_grpc.ServerReflectionStub(channel)
        answer = next(reflect.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")])))
        names = {s.name for s in answer.list_services_response.service}
        assert {"tensorflow.serving.PredictionService", "tensorflow.serving.ModelService"} <= names
        with pytest.raises(grpc.RpcError) as info:
            prediction_service_pb2_grpc.PredictionServiceStub(channel).Classify(
                classification_pb2.ClassificationRequest(), timeout=5
            )
        assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED


# -- bad requests ----------------------------------------------------------------------------
BAD = {
    "wrong dtype": (
        "serving_default",
        {"sequences": seqs() > 0},
        grpc.StatusCode.INVALID_ARGUMENT,
        '"sequences": expects float32 but bool',
    ),
    "wrong rank": (
        "serving_default",
        {"sequences": seqs()[:, 0]},
        grpc.StatusCode.INVALID_ARGUMENT,
        '"sequences": expects rank 3',
    ),
    "wrong feature size": (
        "serving_default",
        {"sequences": np.zeros((2, 5, 4), np.float32)},
        grpc.StatusCode.INVALID_ARGUMENT,
        '"sequences": feature size must be 3',
    ),
    "missing input": (
        "padded",
        {"sequences": seqs()},
        grpc.StatusCode.INVALID_ARGUMENT,
        "Missing but required: {lengths}",
    ),
    "unknown input": (
        "serving_default",
        {"sequences": seqs(), "extra": seqs()},
        grpc.StatusCode.INVALID_ARGUMENT,
        "Sent extra: {extra}",
    ),
    "unknown signature": (
        "nope",
        {"sequences": seqs()},
        grpc.StatusCode.FAILED_PRECONDITION,
        'Serving signature key "nope" not found',
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_inputs_get_a_status_naming_the_input(server, client, case):
    signature, inputs, code, message = BAD[case]
    # The client refuses before sending ...
    with pytest.raises(serving.BadRequestError, match=message) as local:
        client.run(signature, inputs)
    assert local.value.code == code
    # ... and the server answers the same when the check is skipped.
    with (
        Client(server.target, model="adding", validate=False) as unchecked,
        pytest.raises(serving.BadRequestError, match=message) as remote,
    ):
        unchecked.run(signature, inputs)
    assert remote.value.code == code and isinstance(remote.value.__cause__, grpc.RpcError)
    assert client.predict(seqs())["outputs"].shape == (2, 1)  # still serving


def test_an_empty_batch_gets_empty_outputs(server, client):
    """As TF Serving answers it: OK, every output with 0 rows (through the batcher and without it)."""
    empty = np.zeros((0, 5, FEATURES), np.float32)
    for validate in (True, False):
        with Client(server.target, model="adding", validate=validate) as c:
            got = c.predict(empty)
            assert {k: v.shape for k, v in got.items()} == {"outputs": (0, 1), "h": (0, 4), "c": (0, 4)}


@pytest.mark.parametrize(
    ("selector", "error", "message"),
    [
        ({"version": 7}, serving.ModelNotFoundError, r"Servable not found for request: Specific\(adding, 7\)"),
        ({"version_label": "nope"}, serving.BadRequestError, "Unrecognized servable version label: nope"),
    ],
)
def test_unknown_version_or_label(client, selector, error, message):
    with pytest.raises(error, match=message):
        client.predict(seqs(), **selector)
    assert client.predict(seqs())["outputs"].shape == (2, 1)


def test_unknown_model(server):
    with Client(server.target, model="nope") as c:
        with pytest.raises(serving.ModelNotFoundError, match=r"Latest\(nope\)") as info:
            c.predict(seqs())
        assert info.value.code == grpc.StatusCode.NOT_FOUND
        with pytest.raises(serving.ModelNotReadyError):
            c.wait_until_ready(timeout_s=0.5)


def test_request_over_the_size_limit(server, client):
    big = np.zeros((1, MAX_MESSAGE_BYTES // (4 * FEATURES) + 10, FEATURES), np.float32)
    with pytest.raises(serving.MessageTooLargeError) as info:
        client.predict(big)
    assert info.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    with (
        Client(server.target, model="adding", max_message_bytes=8 << 20) as c,  # the server's limit, then
        pytest.raises(serving.MessageTooLargeError),
    ):
        c.predict(big)
    assert client.predict(seqs())["outputs"].shape == (2, 1)


# -- transport -------------------------------------------------------------------------------
def test_retries_move_to_the_next_target(server, unused_port):
    dead = f"127.0.0.1:{unused_port}"
    with Client([dead, server.target], model="adding", max_attempts=3, backoff_s=0.01) as c:
        for _ in range(4):  # every other call starts on the dead target
            assert c.predict(seqs())["outputs"].shape == (2, 1)
    with Client(dead, model="adding", max_attempts=2, backoff_s=0.01) as c:
        with pytest.raises(serving.UnavailableError) as info:
            c.status(timeout_s=5)
        assert info.value.code == grpc.StatusCode.UNAVAILABLE
        assert isinstance(info.value.__cause__, grpc.RpcError)


def test_deadline(client):
    with pytest.raises(serving.DeadlineExceededError) as info:
        client.predict(seqs(batch=16, time_=200), timeout_s=0.001)
    assert isinstance(info.value, TimeoutError)


def test_32_threads_x_50_requests(client, versions):
    x = seqs(batch=1, time_=4, seed=9)
    want = reference(versions[1][1], x)["outputs"]

    def worker(i: int) -> int:
        for _ in range(50):
            np.testing.assert_allclose(client.predict(x)["outputs"], want, atol=1e-5)
        return i

    start = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(32) as pool:
        assert sorted(pool.map(worker, range(32))) == list(range(32))
    print(f"1600 requests in {time.monotonic() - start:.1f}s")


def test_async_client(server, versions):
    async def main():
        async with AsyncClient(server.target, model="adding") as c:
            await c.wait_until_ready(timeout_s=10)
            x = seqs(seed=5)
            outs = await asyncio.gather(*(c.predict(x) for _ in range(8)))
            async with await c.stream(batch_size=2) as s:
                for t in range(x.shape[1]):
                    y = await s.step(x[:, t])
            as_float64 = await c.predict(x.astype(np.float64))  # converted to float32 (serving.conform)
            # Not bitwise: the batcher merged the 8 requests above into one batch, and a batch's size changes
            # the kernel's blocking (BlockLSTMV2's matmul) and so the last bits, as on TF Serving.
            np.testing.assert_allclose(as_float64["outputs"], outs[0]["outputs"], rtol=0, atol=1e-6)
            with pytest.raises(serving.BadRequestError, match='"sequences": expects float32 but bool'):
                await c.predict(x > 0)
            return outs, y, (await c.metadata()).version

    outs, y, version = asyncio.run(main())
    want = reference(versions[1][1], seqs(seed=5))["outputs"]
    for out in outs:
        np.testing.assert_allclose(out["outputs"], want, atol=1e-5)
    np.testing.assert_allclose(y, want, atol=1e-5)
    assert version == 1


# -- versions (last: they change what is loaded) ---------------------------------------------
def test_labels_and_pinned_versions(server):
    with Client(server.target, model="adding_all") as c:
        assert c.metadata(version_label="stable").version == 1
        with pytest.raises(serving.ModelNotFoundError, match=r"Specific\(adding_all, 2\)"):
            c.predict(seqs(), version_label="canary")  # label set, version 2 not there yet


def test_new_version_is_picked_up_while_serving(server, client, versions):
    x = seqs(seed=11)
    stop, errors = False, []

    def hammer():  # requests keep flowing while version 2 loads and version 1 unloads
        while not stop:
            try:
                client.predict(x)
            except Exception as err:
                errors.append(err)

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        running = [pool.submit(hammer) for _ in range(4)]
        copy_version(versions[0][2], server.models / "adding" / "2")
        deadline = time.monotonic() + 60
        while [(v.version, v.state) for v in client.status()] != [(1, "END"), (2, "AVAILABLE")]:
            assert time.monotonic() < deadline, client.status()
            time.sleep(0.1)
        stop = True
        for f in running:
            f.result()
    assert errors == []
    np.testing.assert_allclose(client.predict(x)["outputs"], reference(versions[1][2], x)["outputs"], atol=1e-5)
    with Client(server.target, model="adding_all") as c:
        c.wait_until_ready(version=2, timeout_s=30)
        assert c.metadata(version_label="canary").version == 2
        assert c.metadata(version_label="stable").version == 1
    with Client(server.target, model="adding_pinned") as c:
        assert [(v.version, v.state) for v in c.status()] == [(1, "AVAILABLE")]


@pytest.fixture
def unused_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_sigterm_drains_before_closing(tmp_path, versions):
    """SIGTERM: for --drain-seconds, health says NOT_SERVING and model calls get UNAVAILABLE (the status
    clients retry elsewhere), never CANCELLED as gRPC's own stop() would answer, on REST 503; then it exits 0."""
    copy_version(versions[0][1], tmp_path / "adding" / "1")
    rest_port = free_port()
    proc = ServerProcess(
        [
            "--model-base",
            str(tmp_path / "adding"),
            "--model-name",
            "adding",
            "--drain-seconds",
            "10",
            "--rest-api-port",
            str(rest_port),
        ],
        tmp_path,
    )
    try:
        proc.wait_listening()
        with Client(proc.target, model="adding", max_attempts=1) as c, grpc.insecure_channel(proc.target) as channel:
            c.wait_until_ready(timeout_s=60)
            c.predict(seqs(), timeout_s=10)
            health = health_pb2_grpc.HealthStub(channel)
            proc.proc.send_signal(signal.SIGTERM)
            _wait_for(
                lambda: (
                    health.Check(health_pb2.HealthCheckRequest(service=""), timeout=5).status
                    != health_pb2.HealthCheckResponse.SERVING
                ),
                "health NOT_SERVING after SIGTERM",
                proc,
            )
            with pytest.raises(serving.UnavailableError) as info:
                c.predict(seqs(), timeout_s=5)
            assert info.value.code == grpc.StatusCode.UNAVAILABLE
            assert "shutting down" in str(info.value)
            rest = http.client.HTTPConnection(f"127.0.0.1:{rest_port}", timeout=10)  # the REST API drains alike
            rest.request("POST", "/v1/models/adding:predict", json.dumps({"inputs": seqs().tolist()}))
            answer = rest.getresponse()
            assert answer.status == 503 and "shutting down" in json.loads(answer.read())["error"]
            rest.close()
            assert proc.proc.poll() is None  # still draining, not gone
        assert proc.proc.wait(timeout=60) == 0, proc.log()
    finally:
        proc.terminate()


def _config(*models: tuple[str, str]) -> str:
    return (
        "model_config_list {\n"
        + "".join(
            f'  config {{ name: "{name}" base_path: "{base}" model_platform: "tensorflow" }}\n' for name, base in models
        )
        + "}\n"
    )


def _wait_for(check, what: str, proc: ServerProcess, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout_s:.0f}s:\n{proc.log()}"
        time.sleep(0.1)


def test_model_config_reload_by_file_and_by_rpc(tmp_path, versions):
    """As TF Serving: an edited --model-config is served once polled (new models load, removed ones answer
    NOT_FOUND); HandleReloadConfigRequest does the same; a config it cannot serve changes nothing."""
    from google.protobuf import text_format
    from tensorflow_serving.apis import model_management_pb2, model_service_pb2_grpc
    from tensorflow_serving.config import model_server_config_pb2

    copy_version(versions[0][1], tmp_path / "m1" / "1")
    copy_version(versions[0][2], tmp_path / "m2" / "1")
    config = tmp_path / "models.config"
    config.write_text(_config(("one", "m1")))
    proc = ServerProcess(
        [
            "--model-config",
            str(config),
            "--model-config-file-poll-wait-seconds",
            "0.2",
            "--file-system-poll-wait-seconds",
            "0",
        ],
        tmp_path,
    )
    x = seqs()

    def serves(name: str) -> bool:
        try:
            with Client(proc.target, model=name, max_attempts=1) as c:
                c.predict(x, timeout_s=10)
            return True
        except serving.ModelNotFoundError:
            return False

    try:
        proc.wait_listening()
        assert serves("one") and not serves("two")
        config.write_text(_config(("two", "m2")))  # by file: "one" out, "two" in
        _wait_for(lambda: serves("two") and not serves("one"), "the file reload", proc)
        with Client(proc.target, model="two") as c:
            np.testing.assert_allclose(c.predict(x)["outputs"], reference(versions[1][2], x)["outputs"], atol=1e-5)
        stub = model_service_pb2_grpc.ModelServiceStub(grpc.insecure_channel(proc.target))
        request = model_management_pb2.ReloadConfigRequest()
        text_format.Parse(_config(("one", "m1"), ("two", "m2")), request.config)
        assert stub.HandleReloadConfigRequest(request, timeout=60).status.error_code == 0  # by RPC: both
        assert serves("one") and serves("two")
        bad = model_management_pb2.ReloadConfigRequest(config=model_server_config_pb2.ModelServerConfig())
        text_format.Parse(_config(("one", "m1")).replace('"tensorflow"', '"pytorch"'), bad.config)
        with pytest.raises(grpc.RpcError) as info:
            stub.HandleReloadConfigRequest(bad, timeout=60)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "pytorch" in info.value.details()
        assert serves("one") and serves("two")  # unchanged
        config.write_text("model_config_list { config { name: ")  # a broken edit is logged, nothing changes
        _wait_for(lambda: "not reloaded" in proc.log(), "the error log line", proc)
        assert serves("one") and serves("two")
    finally:
        assert proc.terminate() == 0, proc.log()


def test_a_vanished_base_path_keeps_its_versions_an_empty_one_unloads_them(tmp_path, versions, caplog):
    """As TF Serving's FileSystemStoragePathSource: a base path that cannot be found is an error of that poll,
    which changes nothing loaded; a base path that holds no version unloads what was loaded. Both are logged."""
    from tensorflow_serving.apis import model_pb2

    from serving.manager import ModelManager
    from serving.model_config import ModelSource

    base = tmp_path / "m"
    base.mkdir()
    copy_version(versions[0][1], base / "1")
    manager = ModelManager([ModelSource("m", base)], poll_s=0)
    manager.start()
    try:

        def states():
            return [(v, s.state) for v, s in manager.status(model_pb2.ModelSpec(name="m"))]

        assert states() == [(1, "AVAILABLE")]
        base.rename(tmp_path / "away")
        manager.poll_once()
        assert states() == [(1, "AVAILABLE")]
        assert f"Could not find base path {base} for servable m" in caplog.text
        (tmp_path / "away").rename(base)
        (base / "1").rename(tmp_path / "1-aside")
        manager.poll_once()
        assert states() == [(1, "END")]
        assert f"No versions of servable m found under base path {base}" in caplog.text
    finally:
        manager.stop()
