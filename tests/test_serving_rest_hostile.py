"""The REST port under hostile bytes (issue 30): one real `keras-lstm serve`, raw sockets, bounded counts.

Each case the issue found is a regression test here, sent as bytes on a fresh connection: lone surrogates,
request targets urlsplit cannot read, a Content-Length of 5,000 digits, ``Expect: 100-continue`` on a body over
the limit, an ``init_state`` batch whose JSON answer is over the send limit, a body over the element limit,
``1e400``. Then eight threads send bodies over the element limit at once, and the server's resident memory (read
from /proc/PID/status) must stay within the bound docs/rest.md states: REST workers x 3 x --max-message-bytes,
plus a margin. Last, about 2,000 seeded hostile requests (request lines, headers and bodies) must each get an
HTTP answer with a status of TF Serving's list, JSON errors of at most 1 KB, no traceback anywhere, and the good
requests sent among them the same answer as before, within the same memory bound. Nothing here times a request:
time appears only as socket timeouts.
"""

from __future__ import annotations

import gzip
import json
import re
import socket
import threading
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import numpy as np
import pytest
from serving_helpers import FEATURES, UNITS, ServerProcess, export_version, free_port, reference

from serving.errors import ServingError
from serving.rest import ParseBudget

pytestmark = pytest.mark.timeout(300)

MODEL = "m"
MAX_MESSAGE_BYTES = 4 << 20
MAX_ELEMENTS = 1_100_000  # above the send limit's 1,048,576 float32s, so that each limit can be met first
REST_THREADS = 8
PREDICT = f"/v1/models/{MODEL}:predict"
# The statuses TF Serving's REST API answers (its ToHTTPStatusCode) and those of the HTTP server itself: 413 a
# body over the limit, 431 headers over waitress's 256 KiB, 400 and 501 for what it cannot parse. Never 500.
STATUSES = {200, 400, 401, 404, 413, 429, 431, 501, 503, 504}
# What a refused body may cost, per REST worker: the body, and two copies while it is counted (docs/rest.md).
MEMORY_BOUND_KB = REST_THREADS * 3 * MAX_MESSAGE_BYTES // 1024 + 64 * 1024
# What parsing may cost at once: the bodies the workers hold, and for at most one body's worth of bytes being
# parsed (the server's parse budget) up to 28 bytes of Python objects a byte, a few more while its values are
# flattened, and what the allocator keeps of one parse while the next runs: 48 in all (docs/rest.md).
PARSE_BOUND_KB = (REST_THREADS + 48) * MAX_MESSAGE_BYTES // 1024 + 64 * 1024


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("rest-hostile")
    model = export_version(root / "models" / MODEL / "1", seed=30)
    port = free_port()
    proc = ServerProcess(
        [
            "--model-base",
            str(root / "models" / MODEL),
            "--model-name",
            MODEL,
            "--file-system-poll-wait-seconds",
            "0",
            "--max-message-bytes",
            str(MAX_MESSAGE_BYTES),
            "--max-request-elements",
            str(MAX_ELEMENTS),
            "--rest-api-port",
            str(port),
            "--rest-api-num-threads",
            str(REST_THREADS),
            "--rest-api-timeout-in-ms",
            "120000",
            "--tensorflow-intra-op-parallelism",
            "1",
            "--tensorflow-inter-op-parallelism",
            "1",
        ],
        root,
        entry=("keras_lstm.cli", "serve"),
    )
    proc.address = ("127.0.0.1", port)
    try:
        proc.wait_listening()
        wait = exchange(proc, get("/v1/models/m"))
        for _ in range(600):
            if b'"AVAILABLE"' in wait:
                break
            threading.Event().wait(0.1)
            wait = exchange(proc, get("/v1/models/m"))
        assert b'"AVAILABLE"' in wait, wait[:300]
        proc.model = model
        yield proc
    finally:
        assert proc.terminate() == 0, proc.log()
    log = proc.log()
    for sign in ("Traceback", "uncaptured python exception", "ERROR"):
        assert sign not in log, log[-3000:]


# -- raw HTTP ------------------------------------------------------------------------------------------------
def post(body: bytes, path: str = PREDICT, headers: str = "") -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n{headers}\r\n").encode() + body


def get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()


def exchange(proc, data: bytes, *, half_close: bool = True, timeout_s: float = 30.0) -> bytes:
    """`data` sent as it is on a fresh connection, then (by default) our side closed for writing; every byte the
    server answers until it closes. A server that refuses while we still send may reset us: what came counts."""
    with socket.create_connection(proc.address, timeout=timeout_s) as sock:
        try:
            sock.sendall(data)
            if half_close:
                sock.shutdown(socket.SHUT_WR)
        except TimeoutError:
            raise
        except OSError:  # a broken pipe, a reset, or not connected any more
            pass
        chunks = []
        try:
            while chunk := sock.recv(1 << 16):
                chunks.append(chunk)
        except TimeoutError:
            raise
        except OSError:
            pass
    return b"".join(chunks)


def answers(raw: bytes) -> list[tuple[int, dict[str, str], bytes]]:
    """The HTTP answers in a connection's bytes: (status, headers, body) each, bodies by Content-Length."""
    out = []
    while raw:
        head, sep, rest = raw.partition(b"\r\n\r\n")
        assert sep, f"an answer cut short: {raw[:300]!r}"
        status_line, *lines = head.decode("latin-1").split("\r\n")
        match = re.fullmatch(r"HTTP/1\.[01] (\d{3}) .*", status_line)
        assert match, f"not an HTTP status line: {status_line[:200]!r}"
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
        length = int(headers.get("content-length", 0))
        out.append((int(match.group(1)), headers, rest[:length]))
        raw = rest[length:]
    return out


def check(raw: bytes, statuses: set = STATUSES) -> tuple[int, bytes]:
    """Every answer on the connection is one of `statuses`; JSON errors are {"error": <at most 1 KB>}; no traceback.
    Returns the first answer's status and body."""
    got = [answer for answer in answers(raw) if answer[0] != 100]  # "100 Continue" is an interim answer
    assert got, f"no answer: {raw[:200]!r}"
    for status, headers, body in got:
        assert status in statuses, (status, body[:300])
        assert b"Traceback" not in body and b'File "' not in body, body[:300]
        if status != 200 and headers.get("content-type", "").startswith("application/json"):
            error = json.loads(body)
            assert list(error) == ["error"] and len(error["error"].encode()) <= 1024, body[:300]
    return got[0][0], got[0][2]


def rss_kb(pid: int) -> int:
    match = re.search(r"^VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text(), re.M)
    assert match, "no VmRSS"
    return int(match.group(1))


class PeakMemory:
    """Samples the server's VmRSS every 10 ms while the block runs; `.growth_kb` is the peak over the start."""

    def __init__(self, pid: int) -> None:
        self._pid, self._done = pid, threading.Event()
        self.start_kb = self.peak_kb = rss_kb(pid)
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._done.wait(0.01):
            self.peak_kb = max(self.peak_kb, rss_kb(self._pid))

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._thread.join()
        self.peak_kb = max(self.peak_kb, rss_kb(self._pid))

    @property
    def growth_kb(self) -> int:
        return self.peak_kb - self.start_kb


def sequences(rng, batch: int = 2, steps: int = 4) -> np.ndarray:
    return rng.normal(size=(batch, steps, FEATURES)).astype(np.float32)


def over_the_element_limit() -> bytes:
    """A body within --max-message-bytes whose [rows, 3, FEATURES] list holds more than MAX_ELEMENTS numbers."""
    rows = MAX_ELEMENTS // (3 * FEATURES) + 100  # past the few values a body may hold besides its inputs
    body = b'{"inputs": [' + b",".join([b"[[0,0,0],[0,0,0],[0,0,0]]"] * rows) + b"]}"
    assert len(body) < MAX_MESSAGE_BYTES
    return body


# -- each case of issue 30 -----------------------------------------------------------------------------------
def test_lone_surrogates_in_signature_name_are_400(served):
    x = json.dumps(sequences(np.random.default_rng(1)).tolist()).encode()
    for name in (rb'"\ud800"', rb'"\udfff"', b'"\xed\xa0\x80"', rb'"a\udc00b"', rb'"\ud800\ud800"'):
        status, body = check(exchange(served, post(b'{"signature_name": ' + name + b', "inputs": ' + x + b"}")))
        assert status == 400 and b"JSON Parse error" in body, (name, body)
    status, body = check(exchange(served, post(rb'{"signature_name": "\ud83d\ude00", "inputs": ' + x + b"}")))
    assert status == 400 and b"not found" in body, body  # a valid pair is a name like any other


def test_request_targets_urlsplit_cannot_read_get_an_answer(served):
    for target in ("//[/v1/models/m", "//[/v1/models/m:predict", "/v1/models/m/[", "//x/v1/models/m?[#["):
        status, body = check(exchange(served, get(target)))
        assert status in (400, 404), (target, body)
    for target in ("http://[/v1/models/m", "http://[::1/v1/models/m", "https://]/v1/models/m"):
        status, _ = check(exchange(served, get(target)))
        assert status == 400, target
    status, _ = check(exchange(served, get("http://localhost/v1/models/m")))  # the absolute form, read as such
    assert status == 200


def test_content_length_of_thousands_of_digits_is_400(served):
    for digits in ("9" * 5000, "0" * 4999 + "2", "1" * 4301):
        raw = exchange(served, f"POST {PREDICT} HTTP/1.1\r\nHost: x\r\nContent-Length: {digits}\r\n\r\n{{}}".encode())
        assert check(raw)[0] == 400, digits[:10]


def test_expect_100_continue_on_a_body_over_the_limit_is_refused_before_it_is_sent(served):
    """The client sends only the headers and waits: it must get the 413, not an invitation to send 5 MiB."""
    head = (
        f"POST {PREDICT} HTTP/1.1\r\nHost: x\r\nContent-Length: {MAX_MESSAGE_BYTES + 1}\r\nExpect: 100-continue\r\n\r\n"
    ).encode()
    raw = exchange(served, head, half_close=False)
    assert raw.startswith(b"HTTP/1.1 413 "), raw[:200]
    assert b" 100 Continue" not in raw
    # Within the limit, the invitation comes and the body is read as usual.
    body = json.dumps({"inputs": sequences(np.random.default_rng(2)).tolist()}).encode()
    with socket.create_connection(served.address, timeout=30) as sock:
        sock.sendall(post(body, headers="Expect: 100-continue\r\nConnection: close\r\n")[: -len(body)])
        assert sock.recv(1 << 16).startswith(b"HTTP/1.1 100 Continue\r\n")
        sock.sendall(body)
        raw = b"".join(iter(lambda: sock.recv(1 << 16), b""))
    assert check(raw)[0] == 200


def test_answers_over_the_send_limit_are_refused_before_they_are_written(served):
    """init_state's state is 2 * UNITS float32 a row: over the element limit, or over the send limit at 4 bytes
    each (a float32 on gRPC, the shortest JSON value), it is refused before the model runs."""

    def init_state(batch_size: int) -> tuple[int, bytes]:
        body = {"signature_name": "init_state", "inputs": {"batch_size": batch_size}}
        return check(exchange(served, post(json.dumps(body).encode())))

    row = 2 * UNITS
    assert init_state(2)[0] == 200
    over_elements = MAX_ELEMENTS // row + 1
    over_bytes = MAX_MESSAGE_BYTES // (4 * row) + 1
    assert over_bytes * row <= MAX_ELEMENTS  # within the element limit: the send limit refuses it
    for batch_size in (over_elements, over_bytes, 2**31 - 1):
        status, body = init_state(batch_size)
        assert status == 429 and b"--max-message-bytes" in body, (batch_size, body)
    status, body = init_state(over_bytes - 1)  # 4 MiB on gRPC, 4.7 MB of JSON: refused once written
    assert status == 429 and b"the JSON answer would take 4" in body, body

    # One-step rows: 9 output values a row, 36 bytes on gRPC, about 100 in JSON with nine digits each. 10,000 rows
    # are answered; 70,000 (2.5 MB on gRPC) are over the limit once written as columns, and before any value is
    # written as rows, whose keys ("outputs", "h", "c") alone take 27 bytes a row.
    def rows(n: int) -> bytes:
        return b"[" + b",".join([b"[[0.5,0.5,0.5]]"] * n) + b"]"

    status, body = check(exchange(served, post(b'{"inputs": ' + rows(10_000) + b"}")))
    assert status == 200 and len(json.loads(body)["outputs"]["h"]) == 10_000
    status, body = check(exchange(served, post(b'{"inputs": ' + rows(70_000) + b"}")))
    assert status == 429 and re.search(rb"the JSON answer would take \d+ bytes", body), body
    status, body = check(exchange(served, post(b'{"instances": ' + rows(70_000) + b"}")))
    assert status == 429 and b"the JSON answer would take at least" in body, body


def test_bodies_over_the_element_limit_are_refused_before_they_are_parsed(served):
    status, body = check(exchange(served, post(over_the_element_limit())))
    assert status == 400 and b"JSON values, over the server's limit" in body, body
    status, body = check(exchange(served, post(b'{"inputs": [' + b"[]," * 100_000 + b"[]]}")))
    assert status == 400 and b"lists or objects around 0 values" in body, body


def test_numbers_too_big_for_a_double_are_400(served):
    for number in (b"1e400", b"-1e400", b"1" * 400 + b".0", b"0.1e99999"):
        status, body = check(exchange(served, post(b'{"inputs": [[[' + number + b", 0.5, 0.5]]]}")))
        assert status == 400 and b"Number too big to be stored in double" in body, (number[:10], body)
    status, _ = check(exchange(served, post(b'{"inputs": [[[Infinity, -Infinity, NaN]]]}')))
    assert status == 200  # the constants are values, as in TF Serving


def test_remaining_differences_are_answered_as_documented(served):
    x = sequences(np.random.default_rng(3)).tolist()
    first = {"inputs": x}
    status, body = check(exchange(served, post(b'{"inputs": ' + json.dumps(x).encode() + b', "inputs": "no"}')))
    plain = check(exchange(served, post(json.dumps(first).encode())))[1]
    assert status == 200 and json.loads(body) == json.loads(plain)
    status, body = check(
        exchange(served, post(gzip.compress(json.dumps(first).encode()), headers="Content-Encoding: gzip\r\n"))
    )
    assert status == 200 and json.loads(body) == json.loads(plain)  # inflated, as TF Serving's server does
    bomb = zlib.compressobj(wbits=31)
    bomb = b"".join([bomb.compress(b"[" * (1 << 20)) for _ in range(64)]) + bomb.flush()  # 64 MiB from 64 KiB
    for data, words in [
        (bomb, b"inflates past the server's limit"),
        (b"{} is not gzip", b"not gzip data"),
        (b"\x1f\x8b\x08", b"not one whole gzip member"),
        (gzip.compress(b"{}") + b"x", b"not one whole gzip member"),
    ]:
        status, body = check(exchange(served, post(data, headers="Content-Encoding: gzip\r\n")))
        assert status == 400 and words in body, body
    status, body = check(exchange(served, post(b"{}", headers="Content-Encoding: br\r\n")))
    assert status == 501 and b"Content-Encoding br" in body
    utf16 = json.dumps(first).encode("utf-16")
    assert check(exchange(served, post(utf16)))[0] == 400


# -- concurrent bodies over the limit: the memory bound --------------------------------------------------------
def test_concurrent_bodies_over_the_element_limit_stay_within_the_memory_bound(served):
    body = post(over_the_element_limit())

    def send(_: int) -> int:
        return check(exchange(served, body))[0]

    for _ in range(2):  # the server's buffers and arenas, once, before the measured run
        send(0)
    with PeakMemory(served.proc.pid) as memory, ThreadPoolExecutor(2 * REST_THREADS) as pool:
        statuses = list(pool.map(send, range(6 * REST_THREADS)))
    assert set(statuses) == {400}
    assert memory.growth_kb < MEMORY_BOUND_KB, (memory.growth_kb, MEMORY_BOUND_KB)
    print(
        f"\n{len(statuses)} bodies of {len(body) >> 10} KiB over the element limit, {2 * REST_THREADS} at once: "
        f"resident memory {memory.start_kb} kB -> peak {memory.peak_kb} kB (+{memory.growth_kb} kB, "
        f"bound {MEMORY_BOUND_KB} kB)"
    )


def test_parse_budget_parses_a_large_body_alone_and_waiters_keep_their_deadline():
    budget = ParseBudget(100)
    with budget.hold(60, timeout_s=1.0), budget.hold(40, timeout_s=1.0):  # within the budget together
        with pytest.raises(ServingError) as caught, budget.hold(1, timeout_s=0.05):
            pass
        assert caught.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
    with budget.hold(500, timeout_s=1.0):  # larger than the whole budget: alone
        pass
    entered = threading.Event()

    def second() -> None:
        with budget.hold(80, timeout_s=30.0):
            entered.set()

    with budget.hold(30, timeout_s=1.0):
        waiter = threading.Thread(target=second)
        waiter.start()
        assert not entered.wait(0.1)  # 30 + 80 > 100: it waits for the first to leave
    waiter.join(30.0)
    assert entered.is_set()


def test_concurrent_bodies_within_the_limits_are_parsed_within_the_parse_budget(served):
    """Bodies of one-value lists, the costliest JSON to parse (28 bytes of Python objects a byte), within every
    limit, one on each worker at once: they are parsed at most one body's worth at a time."""
    body = b'{"inputs": [' + b",".join([b"[[0.5]]"] * 500_000) + b"]}"  # [500000, 1, 1]: the wrong feature size
    assert len(body) < MAX_MESSAGE_BYTES

    def send(_: int) -> tuple[int, bytes]:
        return check(exchange(served, post(body), timeout_s=120))

    with PeakMemory(served.proc.pid) as memory, ThreadPoolExecutor(REST_THREADS) as pool:
        answers_ = list(pool.map(send, range(REST_THREADS)))
    assert {status for status, _ in answers_} == {400}
    assert all(b"feature size must be 3" in out for _, out in answers_), answers_[0]
    assert memory.growth_kb < PARSE_BOUND_KB, (memory.growth_kb, PARSE_BOUND_KB)
    print(
        f"\n{len(answers_)} bodies of {len(body) >> 10} KiB parsed, {REST_THREADS} at once: resident memory "
        f"+{memory.growth_kb} kB at the peak (bound {PARSE_BOUND_KB} kB)"
    )


# -- about 2,000 seeded hostile requests ---------------------------------------------------------------------
def hostile_requests(rng: np.random.Generator, good: bytes, count: int) -> list[tuple[bytes, bool]]:
    """(bytes, complete): request lines, targets, headers and bodies that are wrong in the ways a parser can be
    wrong. `complete` is False where the request declares more body than it sends: the server may then close
    without an answer, as HTTP allows for an incomplete message."""
    targets = [
        PREDICT,
        "/v1/models/m",
        "/v1/models/m/metadata",
        "/v1/models/m/versions/1:predict",
        "/v1/models/m/labels/x:predict",
        "//[/v1/models/m",
        "http://[/v1/models/m",
        "http://h/v1/models/m",
        "/v1/models/%ff%fe:predict",
        "/v1/models/m%00:predict",
        "*",
        "/v1/models/" + "n" * 70_000,
        "/monitoring/prometheus/metrics",
        "/v1/models/m:predict?x=%zz#[",
        "/../../etc/passwd",
        "/v1/models/m/versions/" + "9" * 30 + ":predict",
        "/v1/models/m:regress",
        "/v1/\xff\x80:predict",
    ]
    methods = ["POST", "GET", "PUT", "post", "G\x00T", "PRI", "CONNECT", "POST /x", ""]
    versions = ["HTTP/1.1", "HTTP/1.0", "HTTP/2.0", "HTTP/1.1x", "", "HTTP/9.9"]
    surrogates = [rb'"\ud800"', rb'"\udfff"', b'"\xed\xa0\x80"', b'"\xff"', rb'"\u0000"', b'"\x01"']
    bodies = [
        good,
        b"",
        b"{}",
        b"[" * 5000,
        b'{"inputs": ' + b"[" * 300 + b"]" * 300 + b"}",
        b'{"inputs": [[[1e400, 0, 0]]]}',
        b'{"inputs": [[[-1e400, 0, 0]]]}',
        b"\xef\xbb\xbf" + good,
        b'{"signature_name": "init_state", "inputs": {"batch_size": 2000000000}}',
        b'{"signature_name": "init_state", "instances": [{"batch_size": 130000}]}',
        b'{"inputs": [' + b"[]," * 3000 + b"[]]}",
        b'{"inputs": {"sequences": ' + b"9" * 5000 + b"}}",
        *[b'{"signature_name": ' + s + b', "inputs": [[[0.5, 0.5, 0.5]]]}' for s in surrogates],
    ]
    out = []
    for i in range(count):
        kind, truthful = i % 6, False
        method, target, version = "POST", PREDICT, "HTTP/1.1"
        headers = ["Host: x"]
        body = bodies[int(rng.integers(len(bodies)))]
        if kind == 1:  # a body with bits flipped or cut
            flipped = bytearray(good)
            for at in rng.integers(0, len(good), size=int(rng.integers(1, 6))):
                flipped[at] ^= 1 << int(rng.integers(0, 8))
            body = bytes(flipped)[: int(rng.integers(1, len(good) + 1))]
        elif kind == 2:  # the request line
            method = methods[int(rng.integers(len(methods)))]
            target = targets[int(rng.integers(len(targets)))]
            version = versions[int(rng.integers(len(versions)))]
        elif kind == 3:  # headers
            headers += [
                [
                    f"Content-Length: {int(rng.integers(0, 3))}",
                    "Content-Length: -1",
                    "Content-Length: 1e3",
                    "Content-Length: " + "9" * int(rng.integers(1, 6000)),
                    "Content-Length: 0x10",
                    "Transfer-Encoding: chunked",
                    "Transfer-Encoding: gzip, chunked",
                    "Transfer-Encoding: x",
                    "Expect: 100-continue",
                    "Content-Encoding: gzip",
                    "Content-Encoding: identity",
                    "Authorization: Bearer \xff",
                    "X-Bad\x00: 1",
                    "Bad Name: 1",
                    " folded: 1",
                    "Connection: close, keep-alive",
                    "X: " + "a" * 300_000,
                    "Host: [",
                    "X: \r",
                ][int(rng.integers(19))]
                for _ in range(int(rng.integers(1, 4)))
            ]
        elif kind == 4:  # chunked bodies, with sizes that lie
            sizes = [f"{len(body):x}", "ffffffffffffffffffff", "-1", "1;ext=" + "x" * 100, "g", "0" * 5000 + "1"]
            size = sizes[int(rng.integers(len(sizes)))]
            body = f"{size}\r\n".encode() + body + b"\r\n0\r\n\r\n"
            headers.append("Transfer-Encoding: chunked")
            truthful = size == sizes[0] or size == "g"
        elif kind == 5:  # random bytes
            out.append((rng.bytes(int(rng.integers(1, 400))) + b"\r\n\r\n", False))
            continue
        if not any(h.lower().startswith(("content-length", "transfer-encoding")) for h in headers):
            headers.append(f"Content-Length: {len(body)}")
        head = f"{method} {target} {version}".rstrip() + "\r\n" + "\r\n".join(headers) + "\r\n\r\n"
        declared = re.findall(r"(?im)^content-length: *(\d{1,9})\r?$", "\r\n".join(headers))
        chunked = "chunked" in head.lower()
        complete = all(int(d) <= len(body) for d in declared) and (not chunked or (kind == 4 and truthful))
        out.append((head.encode("latin-1") + body, complete))
    return out


def test_two_thousand_hostile_requests_each_get_an_answer(served):
    rng = np.random.default_rng(30)
    x = sequences(rng)
    good = json.dumps({"instances": x.tolist()}).encode()
    want = check(exchange(served, post(good)))[1]
    predictions = json.loads(want)["predictions"]
    oracle = reference(served.model, x)
    np.testing.assert_allclose([p["h"] for p in predictions], oracle["h"], atol=1e-5)
    requests = hostile_requests(rng, good, 2000)
    seen: dict[int, int] = {}
    with PeakMemory(served.proc.pid) as memory:
        for i, (data, complete) in enumerate(requests):
            raw = exchange(served, data)
            if not complete and not [a for a in answers(raw) if a[0] != 100]:  # at most an invitation to go on
                seen[0] = seen.get(0, 0) + 1
                continue
            try:
                status, _ = check(raw)
            except AssertionError as err:
                raise AssertionError(f"request {i}: {data[:200]!r}") from err
            seen[status] = seen.get(status, 0) + 1
            if i % 40 == 0:  # a good request among the hostile ones: the same answer, byte for byte
                assert check(exchange(served, post(good)))[1] == want, f"after request {i}"
    assert check(exchange(served, post(good)))[1] == want
    assert memory.growth_kb < MEMORY_BOUND_KB, (memory.growth_kb, MEMORY_BOUND_KB)
    assert seen.get(0, 0) < len(requests) // 4, seen  # most requests are complete, and those are all answered
    print(
        f"\n{len(requests)} hostile REST requests, HTTP status: count (0: incomplete, closed) "
        f"{dict(sorted(seen.items()))}; "
        f"resident memory +{memory.growth_kb} kB at the peak (bound {MEMORY_BOUND_KB} kB)"
    )
