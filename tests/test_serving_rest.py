"""TF Serving's REST API on the local server, against its gRPC API: one real server process, real sockets.

One server for the module: gRPC and REST (``--rest-api-port``), batching on, Prometheus metrics from the
repository's own models/monitoring.config. Model "adding": two versions, both served, labelled stable=1 and
canary=2 (models/models.config's suggestion for a canary), this project's own exports with two features, as the
demo's adding model, so that docs/rest.md's commands run against it as written. The JSON
forms of TF Serving's REST documentation are sent with curl, as a user would, and each answer is compared with
the gRPC answer for the same input to 1e-6; status, metadata and errors with what TF Serving answers.
"""

from __future__ import annotations

import http.client
import json
import re
import shutil
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor

import grpc
import numpy as np
import pytest
from google.protobuf import json_format
from prometheus_client.parser import text_string_to_metric_families
from serving_helpers import REPO, ServerProcess, copy_version, export_version, free_port, reference
from tensorflow_serving.apis import get_model_metadata_pb2, prediction_service_pb2_grpc

import serving
from serving import BadRequestError, Client

pytestmark = pytest.mark.timeout(240)

FEATURES = 2
CONFIG = """
model_config_list {
  config {
    name: "adding" base_path: "/models/adding" model_platform: "tensorflow"
    model_version_policy { all {} }
    version_labels { key: "stable" value: 1 }
    version_labels { key: "canary" value: 2 }
  }
}
"""
BATCHING = "max_batch_size { value: 32 } batch_timeout_micros { value: 1000 } num_batch_threads { value: 2 }"
CURL = shutil.which("curl")
needs_curl = pytest.mark.skipif(CURL is None, reason="curl is not installed")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    work = tmp_path_factory.mktemp("rest")
    exports = work / "exports"
    oracles = {v: export_version(exports / str(v), seed=10 + v, features=FEATURES) for v in (1, 2)}
    for v in (1, 2):
        copy_version(exports / str(v), work / "models" / "adding" / str(v))
    (work / "models.config").write_text(CONFIG)
    (work / "batching.config").write_text(BATCHING)
    port = free_port()
    proc = ServerProcess(
        [
            "--model-config",
            str(work / "models.config"),
            "--mount",
            f"{work / 'models'}:/models",
            "--batching-parameters-file",
            str(work / "batching.config"),
            "--file-system-poll-wait-seconds",
            "0",
            "--rest-api-port",
            str(port),
            "--monitoring-config-file",
            str(REPO / "models" / "monitoring.config"),
            "--tensorflow-intra-op-parallelism",
            "2",
            "--tensorflow-inter-op-parallelism",
            "1",
        ],
        work,
    )
    try:
        proc.wait_listening()
        proc.rest = f"127.0.0.1:{port}"
        proc.oracles = oracles
        with Client(proc.target, model="adding", timeout_s=20.0) as client:
            client.wait_until_ready(timeout_s=60)
        yield proc
    finally:
        assert proc.terminate() == 0, proc.log()
    log = proc.log()
    assert "Traceback" not in log and "ERROR serving" not in log and "ERROR waitress" not in log, log[-3000:]


@pytest.fixture(scope="module")
def grpc_client(served):
    with Client(served.target, model="adding", timeout_s=20.0) as client:
        yield client


def curl(served, path: str, body: str | None = None) -> tuple[int, dict]:
    """What `curl -s [-d BODY] http://HOST:PORT/PATH` gets: the status and the JSON body."""
    args = [CURL, "-s", "-S", "-w", "\n%{http_code}", f"http://{served.rest}{path}"]
    if body is not None:
        args[1:1] = ["-d", "@-"]  # the body from stdin, as curl -d @file would send it (POST, form content type)
    done = subprocess.run(args, input=body, capture_output=True, text=True, timeout=30, check=True)
    text, _, code = done.stdout.rpartition("\n")
    return int(code), json.loads(text)


def call(served, method: str, path: str, body: bytes | None = None, headers: dict | None = None) -> tuple[int, dict]:
    connection = http.client.HTTPConnection(served.rest, timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        answer = connection.getresponse()
        return answer.status, json.loads(answer.read())
    finally:
        connection.close()


def seqs(batch: int, steps: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(batch, steps, FEATURES)).astype(np.float32)


def arrays(answer: dict) -> dict[str, np.ndarray]:
    """A predict answer of several outputs, row or columnar, as {output: array}."""
    if "outputs" in answer:
        return {k: np.array(v, np.float32) for k, v in answer["outputs"].items()}
    rows = answer["predictions"]
    return {k: np.array([row[k] for row in rows], np.float32) for k in rows[0]}


def assert_same(rest: dict[str, np.ndarray], grpc_answer: dict[str, np.ndarray]) -> None:
    assert set(rest) == set(grpc_answer)
    for name in grpc_answer:
        np.testing.assert_allclose(rest[name], grpc_answer[name], rtol=0, atol=1e-6, err_msg=name)


# -- the forms of TF Serving's REST documentation, sent with curl, against gRPC ---------------------------------
@needs_curl
def test_row_and_columnar_forms_equal_grpc(served, grpc_client):
    x = seqs(2, 5, seed=1)
    want = grpc_client.predict(x)
    forms = {
        "row, plain list": {"instances": x.tolist()},
        "row, named": {"instances": [{"sequences": row} for row in x.tolist()]},
        "columnar, plain": {"inputs": x.tolist()},
        "columnar, named": {"inputs": {"sequences": x.tolist()}},
        "signature_name given": {"signature_name": "serving_default", "inputs": x.tolist()},
    }
    for form, body in forms.items():
        status, answer = curl(served, "/v1/models/adding:predict", json.dumps(body))
        assert status == 200, (form, answer)
        assert set(answer) == {"outputs" if "inputs" in body else "predictions"}, form
        assert_same(arrays(answer), want)
    np.testing.assert_allclose(want["outputs"], reference(served.oracles[2], x)["outputs"], atol=1e-5)


@needs_curl
def test_multiple_named_inputs_and_signatures_equal_grpc(served, grpc_client):
    x, lengths = seqs(3, 6, seed=2), np.array([6, 2, 4], np.int32)
    want = grpc_client.predict(x, lengths=lengths)
    rows = [{"sequences": s, "lengths": int(n)} for s, n in zip(x.tolist(), lengths, strict=True)]
    for body in (
        {"signature_name": "padded", "instances": rows},
        {"signature_name": "padded", "inputs": {"sequences": x.tolist(), "lengths": lengths.tolist()}},
    ):
        status, answer = curl(served, "/v1/models/adding:predict", json.dumps(body))
        assert status == 200, answer
        assert_same(arrays(answer), want)

    state = {"x": x[:, 0], "h": want["h"], "c": want["c"]}
    status, answer = curl(
        served,
        "/v1/models/adding:predict",
        json.dumps({"signature_name": "step", "inputs": {k: v.tolist() for k, v in state.items()}}),
    )
    assert status == 200, answer
    assert_same(arrays(answer), grpc_client.run("step", state))
    status, answer = curl(
        served, "/v1/models/adding:predict", '{"signature_name": "init_state", "inputs": {"batch_size": 2}}'
    )
    assert status == 200 and answer == {"outputs": {"c": [[0.0] * 4] * 2, "h": [[0.0] * 4] * 2}}, answer


@needs_curl
def test_versions_and_labels_urls_equal_grpc(served, grpc_client):
    x = seqs(1, 4, seed=3)
    for path, selector in [
        ("/versions/1", {"version": 1}),
        ("/versions/2", {"version": 2}),
        ("/labels/stable", {"version_label": "stable"}),
        ("/labels/canary", {"version_label": "canary"}),
        ("", {}),
    ]:
        want = grpc_client.predict(x, **selector)
        status, answer = curl(served, f"/v1/models/adding{path}:predict", json.dumps({"instances": x.tolist()}))
        assert status == 200, (path, answer)
        assert_same(arrays(answer), want)
    one = arrays(curl(served, "/v1/models/adding/versions/1:predict", json.dumps({"inputs": x.tolist()}))[1])
    np.testing.assert_allclose(one["h"], reference(served.oracles[1], x)["h"], atol=1e-5)


# -- status, metadata, the docker healthcheck ------------------------------------------------------------------
def ok_status(version: int) -> dict:
    return {"version": str(version), "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}


def test_status_is_rendered_as_tf_serving_renders_it(served):
    assert call(served, "GET", "/v1/models/adding") == (200, {"model_version_status": [ok_status(1), ok_status(2)]})
    assert call(served, "GET", "/v1/models/adding/versions/1") == (200, {"model_version_status": [ok_status(1)]})
    # GetModelStatus ignores labels, in TF Serving as on gRPC.
    assert call(served, "GET", "/v1/models/adding/labels/canary")[1]["model_version_status"] == [
        ok_status(1),
        ok_status(2),
    ]


def test_metadata_is_the_grpc_answer_in_json(served):
    status, answer = call(served, "GET", "/v1/models/adding/versions/1/metadata")
    assert status == 200
    assert answer["model_spec"] == {"name": "adding", "version": "1", "signature_name": ""}
    channel = grpc.insecure_channel(served.target)
    try:
        request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        request.model_spec.name, request.model_spec.version.value = "adding", 1
        grpc_answer = prediction_service_pb2_grpc.PredictionServiceStub(channel).GetModelMetadata(request, timeout=20)
    finally:
        channel.close()
    want = get_model_metadata_pb2.SignatureDefMap()
    grpc_answer.metadata["signature_def"].Unpack(want)
    got = json_format.ParseDict(answer["metadata"]["signature_def"], get_model_metadata_pb2.SignatureDefMap())
    assert got == want and set(got.signature_def) == {"serving_default", "padded", "step", "init_state"}
    inputs = answer["metadata"]["signature_def"]["signature_def"]["serving_default"]["inputs"]
    assert inputs["sequences"]["dtype"] == "DT_FLOAT"  # proto field names and enum names, as TF Serving writes them


def healthcheck() -> list[str]:
    """docker/compose.yaml's healthcheck command, without the CMD marker."""
    compose = (REPO / "docker" / "compose.yaml").read_text()
    line = re.search(r"^\s*test: (\[.*\])\s*$", compose, re.M)
    assert line, "no healthcheck test in docker/compose.yaml"
    command = json.loads(line.group(1))
    assert command[0] == "CMD"
    return command[1:]


def test_docker_healthcheck_passes_against_the_local_server(served):
    port = served.rest.rsplit(":", 1)[1]
    command = [part.replace("/8501", f"/{port}") for part in healthcheck()]
    assert subprocess.run(command, timeout=20).returncode == 0
    missing = [part.replace("/v1/models/adding ", "/v1/models/absent ") for part in command]
    assert subprocess.run(missing, timeout=20).returncode != 0


# -- errors: TF Serving's HTTP status for each code, the gRPC side's messages --------------------------------------
def test_errors_carry_tf_servings_http_status(served):
    body = json.dumps({"instances": seqs(1, 3, seed=4).tolist()}).encode()
    cases = [
        ("POST", "/v1/models/nope:predict", body, 404, "Servable not found for request: Latest(nope)"),
        ("POST", "/v1/models/adding/versions/7:predict", body, 404, "Specific(adding, 7)"),
        ("POST", "/v1/models/adding/labels/beta:predict", body, 400, "Unrecognized servable version label: beta"),
        (
            "POST",
            "/v1/models/adding:predict",
            b'{"signature_name": "nope", "inputs": []}',
            400,
            'Serving signature key "nope" not found.',
        ),
        ("POST", "/v1/models/adding:classify", body, 501, "Classify is not supported"),
        ("POST", "/v1/models/adding:predict", b"{}", 400, "Missing 'inputs' or 'instances' key"),
        ("GET", "/v1/models", None, 400, "Missing model name in request."),
        ("GET", "/v1/models/nope", None, 404, "Could not find any versions of model nope"),
        ("GET", "/v1/models/adding/versions/99999999999999999999", None, 400, "Failed to convert version"),
        ("DELETE", "/v1/models/adding", None, 400, "Malformed request: DELETE /v1/models/adding"),
        ("GET", "/v2/models/adding", None, 404, "Not found: /v2/models/adding"),
    ]
    for method, path, data, code, words in cases:
        status, answer = call(served, method, path, data)
        assert (status, list(answer)) == (code, ["error"]), (path, status, answer)
        assert words in answer["error"], (path, answer)


def test_bad_inputs_get_the_grpc_sides_message(served):
    """A request the admission checks refuse gets the same message on both APIs: one path."""
    x = np.ones((1, 3, FEATURES + 1), np.float32)
    with (
        Client(served.target, model="adding", timeout_s=20.0, validate=False) as client,
        pytest.raises(BadRequestError) as caught,
    ):
        client.predict(x)
    status, answer = call(served, "POST", "/v1/models/adding:predict", json.dumps({"inputs": x.tolist()}).encode())
    assert status == 400 and answer == {"error": caught.value.details}


# -- REST and gRPC at once -----------------------------------------------------------------------------------
def test_rest_and_grpc_calls_mixed_are_all_correct(served, grpc_client):
    oracle = served.oracles[2]
    failures: list[str] = []
    lock = threading.Lock()

    def worker(i: int) -> None:
        rng = np.random.default_rng(100 + i)
        connection = http.client.HTTPConnection(served.rest, timeout=30)  # keep-alive, as a REST client would
        try:
            for j in range(6):
                x = rng.normal(size=(int(rng.integers(1, 4)), int(rng.integers(1, 7)), FEATURES)).astype(np.float32)
                if (i + j) % 2:
                    got = grpc_client.predict(x)
                else:
                    connection.request("POST", "/v1/models/adding:predict", json.dumps({"inputs": x.tolist()}))
                    answer = connection.getresponse()
                    got = arrays(json.loads(answer.read()))
                want = reference(oracle, x)
                for name in want:
                    if not np.allclose(got[name], want[name], atol=1e-5):
                        with lock:
                            failures.append(f"worker {i} call {j} output {name}")
        finally:
            connection.close()

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(worker, range(8)))
    assert not failures, failures


# -- docs/rest.md: every curl command runs -------------------------------------------------------------------
@needs_curl
def test_docs_curl_commands_run(served):
    text = (REPO / "docs" / "rest.md").read_text()
    commands = [line for line in re.findall(r"^curl .*$", text, re.M) if "localhost:8501" in line]
    assert len(commands) >= 5
    for command in commands:
        done = subprocess.run(
            ["bash", "-c", command.replace("localhost:8501", served.rest)],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert done.returncode == 0, (command, done.stderr)
        if "/monitoring/" not in command:
            answer = json.loads(done.stdout)
            assert "error" not in answer, (command, answer)


# -- metrics (last: it reads what the tests above sent) --------------------------------------------------------
def test_prometheus_metrics_count_both_apis(served):
    with (
        Client(served.target, model="absent", timeout_s=20.0, validate=False) as client,
        pytest.raises(serving.ModelNotFoundError),
    ):
        client.predict(seqs(1, 2, seed=5))
    connection = http.client.HTTPConnection(served.rest, timeout=30)
    connection.request("GET", "/monitoring/prometheus/metrics")
    answer = connection.getresponse()
    assert answer.status == 200 and answer.getheader("Content-Type").startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(answer.read().decode())}
    connection.close()
    counts = {}
    for sample in families[":tensorflow:serving:request_count"].samples:
        if sample.name.endswith("_total"):
            labels = sample.labels
            counts[labels["model_name"], labels["signature_name"], labels["entrypoint"], labels["status"]] = (
                sample.value
            )
    assert counts["adding", "serving_default", "REST", "OK"] >= 5
    assert counts["adding", "serving_default", "GRPC", "OK"] >= 5
    assert counts["adding", "padded", "REST", "OK"] >= 2
    assert counts["", "", "GRPC", "NOT_FOUND"] >= 1  # a model that is not served counts under no name
    assert counts["adding", "serving_default", "REST", "INVALID_ARGUMENT"] >= 1
    latency = [
        s
        for s in families[":tensorflow:serving:request_latency"].samples
        if s.name.endswith("_count") and s.labels["entrypoint"] == "REST"
    ]
    assert sum(s.value for s in latency) >= 10

    # The model's run within each request that reached it, as TF Serving's runtime_latency: never longer.
    def sums(family, by):
        out = {}
        for s in families[family].samples:
            key = (s.labels["model_name"], s.labels["signature_name"], s.labels[by], s.name.rsplit("_", 1)[-1])
            out[key] = s.value
        return out

    request, runtime = (
        sums(":tensorflow:serving:request_latency", "entrypoint"),
        sums(":tensorflow:serving:runtime_latency", "API"),
    )
    key = ("adding", "serving_default", "GRPC")
    assert runtime[(*key, "count")] == counts[(*key, "OK")]
    assert 0 < runtime[(*key, "sum")] < request[(*key, "sum")]
