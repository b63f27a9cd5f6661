"""The local server under hostile input: one real server process, seeded request classes, bounded counts.

Each class of request (issue 16) is generated from one seed and sent as raw bytes over a real socket;
the test asserts the status code of every request of the class (TF Serving's, where it has one), that no
well-formed message gets INTERNAL, that no error message exceeds 1 KB, that the claims without data
leave the server's resident memory where it was, that a deadline stops the run, that the log holds
no traceback and at most one rate-limited line per window for unparseable bodies, and that canary
requests, sent before, between and among the hostile ones, still equal the Keras oracle. The same server
answers TF Serving's REST API (issue 24): ``test_hostile_rest_bodies`` sends it hostile HTTP bodies, with the
same checks (TF Serving's HTTP status per class, bounded error bodies, canaries, no traceback). The REST port under
hostile HTTP bytes (issue 30: request lines, headers, ``Expect``, the body and answer bounds, memory under
concurrent bodies over the limits, 2,000 seeded requests) is ``tests/test_serving_rest_hostile.py``, against a
server of its own with limits its cases need.
"""

from __future__ import annotations

import collections
import http.client
import json
import re
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import numpy as np
import pytest
from serving_helpers import FEATURES, UNITS, ServerProcess, export_version, free_port, reference
from tensorflow.core.framework import tensor_pb2, types_pb2
from tensorflow_serving.apis import get_model_metadata_pb2, get_model_status_pb2, predict_pb2

from serving import tensors

pytestmark = pytest.mark.timeout(240)

MODEL = "m"
MAX_MESSAGE_BYTES = 1 << 20
MAX_ELEMENTS = 1_000_000
MAX_STEPS = 300_000
PREDICT = "/tensorflow.serving.PredictionService/Predict"
METADATA = "/tensorflow.serving.PredictionService/GetModelMetadata"
STATUS = "/tensorflow.serving.ModelService/GetModelStatus"
C = grpc.StatusCode
RSS_GROWTH_BOUND_KB = 64 * 1024  # the claims below would take 100s of MB (or TBs) if allocated


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    model = export_version(root / "models" / MODEL / "1", seed=7)
    rest_port = free_port()
    proc = ServerProcess(
        [
            "--model-base",
            str(root / "models" / MODEL),
            "--model-name",
            MODEL,
            "--enable-batching",
            "--max-message-bytes",
            str(MAX_MESSAGE_BYTES),
            "--max-request-elements",
            str(MAX_ELEMENTS),
            "--max-sequence-length",
            str(MAX_STEPS),
            "--file-system-poll-wait-seconds",
            "0",
            "--log-level",
            "DEBUG",
            "--rest-api-port",
            str(rest_port),
        ],
        root,
    )
    proc.rest = f"127.0.0.1:{rest_port}"
    try:
        proc.wait_listening()
        channel = grpc.insecure_channel(
            proc.target,
            options=[("grpc.max_receive_message_length", 64 << 20), ("grpc.max_send_message_length", 64 << 20)],
        )
        grpc.channel_ready_future(channel).result(timeout=60)
        yield proc, channel, model
        channel.close()
    finally:
        assert proc.terminate() == 0, proc.log()


class Sender:
    """Raw calls; records (class, code) and checks every error message's size."""

    def __init__(self, channel: grpc.Channel) -> None:
        self._calls = {m: channel.unary_unary(m) for m in (PREDICT, METADATA, STATUS)}
        self.seen: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
        self.longest_details = 0
        self._lock = threading.Lock()

    def send(self, kind: str, method: str, body: bytes, timeout_s: float = 20.0) -> tuple[grpc.StatusCode, bytes | str]:
        try:
            answer = self._calls[method](body, timeout=timeout_s)
            code, out = C.OK, answer
        except grpc.RpcError as err:
            code, out = err.code(), err.details() or ""
            with self._lock:
                self.longest_details = max(self.longest_details, len(out.encode()))
        with self._lock:
            self.seen[kind][code.name] += 1
        return code, out

    def expect(self, kind: str, method: str, body: bytes, codes: set, **kw) -> bytes | str:
        code, out = self.send(kind, method, body, **kw)
        assert code in codes, f"{kind}: {code} {str(out)[:300]!r}"
        return out


def predict_body(inputs: dict, *, signature: str = "", name: str = MODEL, output_filter=(), label: str = "") -> bytes:
    request = predict_pb2.PredictRequest(output_filter=list(output_filter))
    request.model_spec.name = name
    if signature:
        request.model_spec.signature_name = signature
    if label:
        request.model_spec.version_label = label
    for key, value in inputs.items():
        if isinstance(value, tensor_pb2.TensorProto):
            request.inputs[key].CopyFrom(value)
        else:
            tensors.to_proto(value, into=request.inputs[key])
    return request.SerializeToString()


def claim(dtype: int, shape, **values) -> tensor_pb2.TensorProto:
    proto = tensor_pb2.TensorProto(dtype=dtype, **values)
    for size in shape:
        proto.tensor_shape.dim.add(size=size)
    return proto


def seqs(rng, batch=2, steps=5) -> np.ndarray:
    return rng.normal(size=(batch, steps, FEATURES)).astype(np.float32)


def canary(sender: Sender, model, rng) -> None:
    x = seqs(rng, batch=int(rng.integers(1, 4)), steps=int(rng.integers(1, 9)))
    out = sender.expect("canary", PREDICT, predict_body({"sequences": x}), {C.OK})
    got = {k: tensors.to_array(v) for k, v in predict_pb2.PredictResponse.FromString(out).outputs.items()}
    want = reference(model, x)
    for key in want:
        np.testing.assert_allclose(got[key], want[key], atol=1e-5)


def rss_kb(pid: int) -> int:
    match = re.search(r"^VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text(), re.M)
    assert match, "no VmRSS"
    return int(match.group(1))


def test_hostile_requests(served):
    proc, channel, model = served
    rng = np.random.default_rng(16)
    s = Sender(channel)
    started = time.monotonic()
    good = predict_body({"sequences": seqs(rng)})
    canary(s, model, rng)

    # 1. Unparseable, truncated and bit-flipped bodies: INTERNAL only when protobuf cannot parse the body
    # (gRPC's answer, in Python as in TF Serving's C++); any parseable one gets a status of the request path.
    parseable_codes = {C.OK, C.INVALID_ARGUMENT, C.NOT_FOUND, C.FAILED_PRECONDITION, C.RESOURCE_EXHAUSTED}
    bodies = [rng.bytes(int(rng.integers(1, 200))) for _ in range(40)]
    bodies += [good[: int(rng.integers(1, len(good)))] for _ in range(40)]
    for _ in range(40):
        flipped = bytearray(good)
        for at in rng.integers(0, len(good), size=int(rng.integers(1, 4))):
            flipped[at] ^= 1 << int(rng.integers(0, 8))
        bodies.append(bytes(flipped))
    unparseable = 0
    for body in bodies:
        try:
            predict_pb2.PredictRequest.FromString(body)
            s.expect("bytes: parseable", PREDICT, body, parseable_codes)
        except Exception:
            unparseable += 1
            s.expect("bytes: unparseable", PREDICT, body, {C.INTERNAL})
    assert unparseable > 40
    canary(s, model, rng)

    # 2. Typed values out of their dtype's range (and so of the signature's dtype): INVALID_ARGUMENT.
    for dtype, field, value in [
        (types_pb2.DT_INT8, "int_val", 300),
        (types_pb2.DT_UINT8, "int_val", -1),
        (types_pb2.DT_INT16, "int_val", 40000),
        (types_pb2.DT_UINT16, "int_val", -5),
        (types_pb2.DT_HALF, "half_val", -1),
        (types_pb2.DT_HALF, "half_val", 70000),
    ]:
        s.expect(
            "out-of-range values",
            PREDICT,
            predict_body({"sequences": claim(dtype, [1, 1, FEATURES], **{field: [value]})}),
            {C.INVALID_ARGUMENT},
        )

    # 3. Claims without data, and claims over the limits: refused before anything is allocated.
    rss_before = rss_kb(proc.proc.pid)
    f32, big = types_pb2.DT_FLOAT, 2**40
    claims = [
        {"sequences": claim(f32, [big])},
        {"sequences": claim(f32, [1, big, FEATURES])},
        {"sequences": claim(f32, [big, 1, FEATURES])},
        {"sequences": claim(f32, [2**36], float_val=[1.0])},
        {"sequences": claim(f32, [2**20, 2**20, FEATURES], float_val=[1.0])},
        {"sequences": claim(types_pb2.DT_STRING, [big])},
        {"sequences": claim(types_pb2.DT_STRING, [10**7])},
        {"sequences": claim(f32, [1_000_000, 1, FEATURES])},
        {"sequences": claim(f32, [1, 1_000_000, FEATURES])},
        {"sequences": claim(f32, [1000, 100, FEATURES])},  # within the limit, but no values sent
        {"sequences": claim(f32, [1000, 1000, FEATURES], float_val=[0.5])},
        {"sequences": claim(f32, [1, MAX_STEPS + 1, FEATURES], float_val=[0.5])},
    ]
    for body in [predict_body(c) for c in claims for _ in range(3)]:
        s.expect("claims", PREDICT, body, {C.INVALID_ARGUMENT})
    padded = {"sequences": seqs(rng), "lengths": claim(types_pb2.DT_INT32, [big])}
    s.expect("claims", PREDICT, predict_body(padded, signature="padded"), {C.INVALID_ARGUMENT})
    for batch_size in (2**31 - 1, MAX_ELEMENTS):  # init_state's state would exceed the element limit
        body = predict_body({"batch_size": np.int32(batch_size)}, signature="init_state")
        s.expect("init_state over the limit", PREDICT, body, {C.RESOURCE_EXHAUSTED})
    rss_growth = rss_kb(proc.proc.pid) - rss_before
    assert rss_growth < RSS_GROWTH_BOUND_KB, f"resident memory grew by {rss_growth} kB"
    canary(s, model, rng)

    # 4. Wrong dtypes, ranks and feature sizes; lying shapes: INVALID_ARGUMENT.
    for _ in range(40):
        rank = int(rng.integers(0, 6))
        dims = [int(d) for d in rng.integers(1, 4, size=rank)]
        dtype = int(rng.choice([types_pb2.DT_DOUBLE, types_pb2.DT_INT32, types_pb2.DT_STRING, 999, f32]))
        if dtype == f32 and rank == 3:
            dims[2] = FEATURES + 1
        array = claim(dtype, dims)
        if dtype == f32:
            array.tensor_content = np.ones(dims, np.float32).tobytes()
        s.expect("wrong dtype/rank/shape", PREDICT, predict_body({"sequences": array}), {C.INVALID_ARGUMENT})
    for _ in range(20):
        x = seqs(rng)
        content = x.tobytes()
        cut = int(rng.integers(1, len(content)))
        lie = [
            claim(f32, x.shape, tensor_content=content[:cut]),
            claim(f32, x.shape, tensor_content=content + rng.bytes(int(rng.integers(1, 9)))),
            claim(f32, [2, -1, FEATURES], tensor_content=content),
        ]
        unknown_rank = claim(f32, x.shape, tensor_content=content)
        unknown_rank.tensor_shape.unknown_rank = True
        for proto in (*lie, unknown_rank):
            s.expect("lying shapes", PREDICT, predict_body({"sequences": proto}), {C.INVALID_ARGUMENT})

    # 5. NaN / Inf, a value list longer than the shape (TF's rule: the first n) and the one-value short form: OK.
    x = seqs(rng)
    x[0, 1, :] = np.nan
    x[1, 2, 0] = np.inf
    s.expect("nan/inf", PREDICT, predict_body({"sequences": x}), {C.OK})
    long_list = claim(f32, x.shape, float_val=[*np.nan_to_num(x).ravel(), 9.0, 9.0])
    out = s.expect("values beyond the shape", PREDICT, predict_body({"sequences": long_list}), {C.OK})
    got = tensors.to_array(predict_pb2.PredictResponse.FromString(out).outputs["outputs"])
    np.testing.assert_allclose(got, reference(model, np.nan_to_num(x))["outputs"], atol=1e-5)
    out = s.expect(
        "one value filled out",
        PREDICT,
        predict_body({"sequences": claim(f32, [2, 4, FEATURES], float_val=[0.25])}),
        {C.OK},
    )
    got = tensors.to_array(predict_pb2.PredictResponse.FromString(out).outputs["h"])
    np.testing.assert_allclose(got, reference(model, np.full((2, 4, FEATURES), 0.25, np.float32))["h"], atol=1e-5)
    canary(s, model, rng)

    # 6. Unknown and huge names, in every RPC: TF Serving's codes, messages at most 1 KB.
    huge = "n" * (1 << 19)
    x = {"sequences": seqs(rng)}
    for name in ("nope", huge):
        s.expect("unknown model", PREDICT, predict_body(x, name=name), {C.NOT_FOUND})
        spec = {"model_spec": {"name": name}}
        meta = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"], **spec)
        s.expect("unknown model", METADATA, meta.SerializeToString(), {C.NOT_FOUND})
        s.expect(
            "unknown model",
            STATUS,
            get_model_status_pb2.GetModelStatusRequest(**spec).SerializeToString(),
            {C.NOT_FOUND},
        )
        s.expect("unknown signature", PREDICT, predict_body(x, signature=name), {C.FAILED_PRECONDITION})
        s.expect("unknown label", PREDICT, predict_body(x, label=name), {C.INVALID_ARGUMENT})
        s.expect("unknown input key", PREDICT, predict_body({**x, name: seqs(rng)}), {C.INVALID_ARGUMENT})
        s.expect("unknown input key", PREDICT, predict_body({name: seqs(rng)}), {C.INVALID_ARGUMENT})
        s.expect("unknown output alias", PREDICT, predict_body(x, output_filter=[name]), {C.INVALID_ARGUMENT})
        bad_field = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=[name], model_spec={"name": "nope"})
        s.expect("metadata_field checked first", METADATA, bad_field.SerializeToString(), {C.INVALID_ARGUMENT})
        label_status = get_model_status_pb2.GetModelStatusRequest(model_spec={"name": MODEL, "version_label": name})
        s.expect("status ignores labels", STATUS, label_status.SerializeToString(), {C.OK})
    s.expect(
        "duplicate output alias", PREDICT, predict_body(x, output_filter=["outputs", "outputs"]), {C.INVALID_ARGUMENT}
    )
    for method in (PREDICT, METADATA, STATUS):
        assert s.expect("no model_spec", method, b"", {C.INVALID_ARGUMENT}) == "Missing ModelSpec"
    assert s.longest_details <= 1024

    # 7. Hostile lengths and states; an empty batch (TF Serving: OK, empty outputs).
    body = predict_body({"sequences": seqs(rng), "lengths": np.array([-5, 2**31 - 1], np.int32)}, signature="padded")
    s.expect("hostile lengths", PREDICT, body, {C.OK})
    body = predict_body({"sequences": seqs(rng), "lengths": np.array([1, 2, 3], np.int32)}, signature="padded")
    s.expect("hostile lengths", PREDICT, body, {C.INVALID_ARGUMENT})
    state = {
        "x": np.ones((2, FEATURES), np.float32),
        "h": np.ones((3, UNITS), np.float32),
        "c": np.ones((2, UNITS), np.float32),
    }
    s.expect("hostile states", PREDICT, predict_body(state, signature="step"), {C.INVALID_ARGUMENT})
    s.expect(
        "hostile states",
        PREDICT,
        predict_body({"batch_size": np.int32(-3)}, signature="init_state"),
        {C.INVALID_ARGUMENT},
    )
    out = s.expect("empty batch", PREDICT, predict_body({"sequences": np.zeros((0, 5, FEATURES), np.float32)}), {C.OK})
    shapes = {
        k: tuple(d.size for d in v.tensor_shape.dim)
        for k, v in predict_pb2.PredictResponse.FromString(out).outputs.items()
    }
    assert shapes == {"outputs": (0, 1), "h": (0, UNITS), "c": (0, UNITS)}

    # 8. Oversize messages: gRPC's RESOURCE_EXHAUSTED.
    for _ in range(3):
        s.expect(
            "oversize",
            PREDICT,
            predict_body({"sequences": np.zeros((1, 100_000, FEATURES), np.float32)}),
            {C.RESOURCE_EXHAUSTED},
        )

    # 9. A deadline stops the run: the longest sequence allowed, filled from one value, given 0.3 s.
    body = predict_body({"sequences": claim(f32, [1, MAX_STEPS, FEATURES], float_val=[0.5])})
    s.expect("deadline", PREDICT, body, {C.DEADLINE_EXCEEDED}, timeout_s=0.3)
    stopped = "serving_default stopped at its deadline"
    wait_until = time.monotonic() + 60
    while stopped not in proc.log() and time.monotonic() < wait_until:
        time.sleep(0.1)
    assert stopped in proc.log()

    # 10. Eight threads: hostile requests mixed with canaries, every canary exact.
    hostile = [predict_body(claims[i % len(claims)]) for i in range(24)] + bodies[:24]

    def mixed(i: int) -> None:
        local = np.random.default_rng(100 + i)
        for j in range(6):
            canary(s, model, local)
            s.send("concurrent hostile", PREDICT, hostile[(i * 6 + j) % len(hostile)])

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(mixed, range(8)))
    canary(s, model, rng)

    # The log: no traceback, no request logged as a server failure, unparseable bodies rate-limited.
    elapsed = time.monotonic() - started
    log_text = proc.log()
    assert "Traceback" not in log_text and " failed\n" not in log_text, log_text[-3000:]
    assert "ERROR serving.server" not in log_text
    lines = log_text.count("unparseable request body")
    assert 1 <= lines <= elapsed / 10 + 1, (lines, elapsed)
    assert "INTERNAL" not in {
        code
        for kind, codes in s.seen.items()
        if kind != "bytes: unparseable" and kind != "concurrent hostile"
        for code in codes
    }
    print("\nhostile requests per class (status: count):")
    for kind, codes in s.seen.items():
        print(f"  {kind:32s} {dict(codes)}")
    print(
        f"  resident memory growth over the claims: {rss_growth} kB; "
        f"{lines} unparseable-body log lines in {elapsed:.1f}s"
    )


# -- the REST API (issue 24): the same server, hostile HTTP bodies ------------------------------------------------
REST_PREDICT = f"/v1/models/{MODEL}:predict"


def rest(proc, method: str, path: str, body: bytes | None = None, headers: dict | None = None) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection(proc.rest, timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        answer = connection.getresponse()
        return answer.status, answer.read()
    finally:
        connection.close()


def raw_http(proc, data: bytes) -> bytes:
    """Bytes sent as they are on a fresh connection (lying headers); the answer's bytes."""
    host, port = proc.rest.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


class RestSender:
    """REST calls; records (class, status), checks every error body is {"error": message} of at most 1 KB."""

    def __init__(self, proc) -> None:
        self.proc = proc
        self.seen: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
        self._lock = threading.Lock()

    def expect(
        self,
        kind: str,
        body: bytes,
        statuses: set,
        path: str = REST_PREDICT,
        method: str = "POST",
        headers: dict | None = None,
    ) -> bytes:
        status, out = rest(self.proc, method, path, body, headers)
        with self._lock:
            self.seen[kind][status] += 1
        assert status in statuses, f"{kind}: {status} {out[:300]!r}"
        if status != 200 and status not in (413, 431):  # those two are waitress's own text answers
            answer = json.loads(out)
            assert list(answer) == ["error"] and len(answer["error"].encode()) <= 1024, (kind, out[:300])
        return out

    def canary(self, model, rng) -> None:
        x = seqs(rng, batch=int(rng.integers(1, 4)), steps=int(rng.integers(1, 9)))
        out = json.loads(self.expect("canary", json.dumps({"inputs": x.tolist()}).encode(), {200}))["outputs"]
        want = reference(model, x)
        for key in want:
            np.testing.assert_allclose(np.array(out[key], np.float32), want[key], atol=1e-5)


def test_hostile_rest_bodies(served):
    proc, _, model = served
    rng = np.random.default_rng(24)
    s = RestSender(proc)
    s.canary(model, rng)
    good = json.dumps({"instances": seqs(rng).tolist()}).encode()

    # 1. Bytes that are not JSON, truncated and bit-flipped bodies: 400, or 200 where a flip left valid JSON.
    bodies = [rng.bytes(int(rng.integers(1, 200))) for _ in range(30)]
    bodies += [good[: int(rng.integers(0, len(good)))] for _ in range(30)]
    for _ in range(30):
        flipped = bytearray(good)
        for at in rng.integers(0, len(good), size=int(rng.integers(1, 4))):
            flipped[at] ^= 1 << int(rng.integers(0, 8))
        bodies.append(bytes(flipped))
    for body in bodies:
        s.expect("bytes", body, {200, 400})
    s.canary(model, rng)

    # 2. Wrong nesting, ragged lists, wrong JSON types, numbers the dtype cannot hold, base64 where no string is
    # taken, deep nesting, huge keys and digits: 400 before any array is built.
    x = seqs(rng).tolist()
    deep: object = 0.5
    for _ in range(500):
        deep = [deep]
    bad = [
        b"[" * 200_000 + b"]" * 200_000,
        b'{"inputs": ' + b"[" * 50_000 + b"]" * 50_000 + b"}",
        {"inputs": deep},
        {"inputs": [[[0.5, 0.5, 0.5], [0.5]]]},
        {"inputs": [[[0.5, 0.5, [0.5]]]]},
        {"instances": [x[0], x[1][:2]]},
        {"instances": [{"sequences": x[0]}, x[1]]},
        {"inputs": [[["a", 1, 2]]]},
        {"inputs": [[[None, 1, 2]]]},
        {"inputs": [[[True, 1, 2]]]},
        {"inputs": [[[1e39, 1, 2]]]},
        {"inputs": [[[2**24 + 1, 1, 2]]]},
        {"inputs": [[[{"b64": "AAAA"}, 1, 2]]]},
        {"inputs": {"sequences": {}}},
        {"signature_name": "padded", "inputs": {"sequences": x, "lengths": [2**31, 1]}},
        {"signature_name": "padded", "inputs": {"sequences": x, "lengths": [0.5, 1]}},
        {"signature_name": ["padded"], "inputs": x},
        {"instances": x, "inputs": x},
        {"instances": []},
        {"instances": "x"},
        {"inputs": {"k" * 500_000: 1}},
        {"instances": [{"k" * 500_000: 1}]},
        [1, 2],
        "text",
        b'{"inputs": [[[' + b"9" * 5000 + b", 1, 2]]]}",
        b"\xff\xfe{}",
        b"",
        b"{}",
    ]
    for body in bad:
        s.expect("malformed", body if isinstance(body, bytes) else json.dumps(body).encode(), {400})
    s.canary(model, rng)

    # 3. The gRPC side's checks and limits, through REST: wrong shapes 400; init_state's batch over the element
    # limit 429 (RESOURCE_EXHAUSTED); unknown names 404 / 400 with their messages cut short.
    for body in [
        {"inputs": np.ones((1, 2, FEATURES + 1)).tolist()},
        {"inputs": np.ones((2, FEATURES)).tolist()},
        {"inputs": 1.0},
        {
            "signature_name": "step",
            "inputs": {"x": [[1.0] * FEATURES] * 2, "h": [[0.0] * UNITS] * 3, "c": [[0.0] * UNITS] * 2},
        },
    ]:
        s.expect("checks", json.dumps(body).encode(), {400})
    for batch_size in (2**31 - 1, MAX_ELEMENTS):
        s.expect(
            "limits", json.dumps({"signature_name": "init_state", "inputs": {"batch_size": batch_size}}).encode(), {429}
        )
    huge = "n" * 100_000
    s.expect("huge names", good, {404}, path=f"/v1/models/{huge}:predict")
    s.expect("huge names", b"", {404}, path=f"/v1/models/{huge}", method="GET")
    s.expect("huge names", good, {400}, path=f"/v1/models/{MODEL}/labels/{huge}:predict")
    s.expect("huge names", json.dumps({"signature_name": huge, "inputs": x}).encode(), {400})
    s.expect("huge names", good, {400}, path=f"/v1/models/{MODEL}/versions/{'9' * 5000}:predict")
    for method in ("PUT", "DELETE", "PATCH", "OPTIONS"):
        s.expect("methods", good, {400}, method=method)
    s.canary(model, rng)

    # 4. Bodies over --max-message-bytes: refused by the HTTP server (413) once their headers are read, and the
    # connection closed; a client still sending the rest may see the close (a reset) before the 413. One that
    # only claims the size in Content-Length gets the 413. A chunked body is read like any other.
    oversize = b"[" + b"0," * MAX_MESSAGE_BYTES + b"0]"
    try:
        answer = raw_http(
            proc,
            f"POST {REST_PREDICT} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(oversize)}\r\n\r\n".encode() + oversize,
        )
    except TimeoutError:
        raise
    except OSError:  # broken pipe, reset, or not connected any more at the half-close
        answer = b"closed"
    assert answer == b"closed" or answer.startswith(b"HTTP/1.1 413"), answer[:200]
    answer = raw_http(proc, f"POST {REST_PREDICT} HTTP/1.1\r\nHost: x\r\nContent-Length: {2**40}\r\n\r\n{{}}".encode())
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    chunked = good[:40], good[40:]
    body = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunked) + b"0\r\n\r\n"
    answer = raw_http(
        proc,
        f"POST {REST_PREDICT} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
        + body,
    )
    assert answer.startswith(b"HTTP/1.1 200") and b'"predictions"' in answer, answer[:300]
    garbage = raw_http(proc, b"\x16\x03\x01 not http at all\r\n\r\n")
    assert garbage.startswith(b"HTTP/1.") and b" 400 " in garbage.split(b"\r\n", 1)[0], garbage[:200]
    s.canary(model, rng)

    # 5. Eight threads: hostile bodies mixed with canaries, every canary exact.
    hostile = [b if isinstance(b, bytes) else json.dumps(b).encode() for b in bad[2:20]] + bodies[:30]

    def mixed(i: int) -> None:
        local = np.random.default_rng(200 + i)
        for j in range(5):
            s.canary(model, local)
            rest(proc, "POST", REST_PREDICT, hostile[(i * 5 + j) % len(hostile)])

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(mixed, range(8)))
    s.canary(model, rng)

    log_text = proc.log()
    assert "Traceback" not in log_text and "ERROR serving.server" not in log_text, log_text[-3000:]
    assert "ERROR waitress" not in log_text, log_text[-3000:]
    print("\nhostile REST bodies per class (HTTP status: count):")
    for kind, statuses in s.seen.items():
        print(f"  {kind:16s} {dict(statuses)}")
