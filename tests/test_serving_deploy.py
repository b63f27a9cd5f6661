"""The repository's own configs (models/*.config) served over TLS, and a clean shutdown.

The server runs as `keras-lstm serve` and reads models/models.config and models/batching.config exactly as committed,
with `--mount` pointing the container path /models at a temporary directory.
"""

from __future__ import annotations

import concurrent.futures
import http.client
import json
import shutil
import subprocess
import threading
import time

import grpc
import numpy as np
import pytest
from serving_helpers import FEATURES, REPO, ServerProcess, export_version, free_port

import serving
from serving import Client

pytestmark = [
    pytest.mark.timeout(180),
    pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command for test certificates"),
]


def _openssl(*args: str, cwd) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    """A CA, a server certificate for localhost / 127.0.0.1, and a client certificate."""
    d = tmp_path_factory.mktemp("certs")
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "1",
        "-subj",
        "/CN=test-ca",
        cwd=d,
    )
    for name, san in (
        ("server", "subjectAltName=DNS:localhost,IP:127.0.0.1"),
        ("client", "extendedKeyUsage=clientAuth"),
    ):
        (d / f"{name}.ext").write_text(san + "\n")
        _openssl(
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            f"{name}.key",
            "-out",
            f"{name}.csr",
            "-subj",
            f"/CN={name if name == 'client' else 'localhost'}",
            cwd=d,
        )
        _openssl(
            "x509",
            "-req",
            "-in",
            f"{name}.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            f"{name}.pem",
            "-days",
            "1",
            "-extfile",
            f"{name}.ext",
            cwd=d,
        )
    return {p.name: p.read_bytes() for p in d.iterdir()} | {"dir": d}


@pytest.fixture(scope="module")
def server(tmp_path_factory, certs):
    work = tmp_path_factory.mktemp("deploy")
    (work / "models" / "adding").mkdir(parents=True)
    export_version(work / "models" / "adding" / "1", seed=1)
    d, rest_port = certs["dir"], free_port()
    proc = ServerProcess(
        [
            "--model-config",
            str(REPO / "models" / "models.config"),
            "--mount",
            f"{work / 'models'}:/models",
            "--batching-parameters-file",
            str(REPO / "models" / "batching.config"),
            "--ssl-cert",
            str(d / "server.pem"),
            "--ssl-key",
            str(d / "server.key"),
            "--ssl-client-ca",
            str(d / "ca.pem"),
            "--auth-token",
            "test-token",
            "--rest-api-port",
            str(rest_port),
        ],
        work,
        entry=("keras_lstm.cli", "serve"),
    )
    proc.rest = f"127.0.0.1:{rest_port}"
    try:
        proc.wait_listening()
        yield proc
    finally:
        proc.terminate()


def tls_client(server, certs, token="test-token", **kwargs) -> Client:
    return Client(
        server.target,
        model="adding",
        root_certificates=certs["ca.pem"],
        private_key=certs["client.key"],
        certificate_chain=certs["client.pem"],
        metadata=[("authorization", f"Bearer {token}")],
        **kwargs,
    )


def test_mutual_tls_with_the_repository_configs(server, certs):
    with tls_client(server, certs) as client:
        client.wait_until_ready(timeout_s=60)
        out = client.predict(np.zeros((2, 3, FEATURES), np.float32))
        assert out["outputs"].shape == (2, 1)
    assert "policy latest 1" in server.log()


def test_call_metadata_reaches_the_server(server, certs):
    with tls_client(server, certs, token="wrong") as client:
        with pytest.raises(serving.UnauthenticatedError) as info:
            client.status(timeout_s=10)
        assert info.value.code == grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.parametrize("kwargs", [{}, {"root_certificates": "ca"}], ids=["plaintext", "no client certificate"])
def test_without_the_right_credentials_the_server_is_unavailable(server, certs, kwargs):
    kwargs = dict.fromkeys(kwargs, certs["ca.pem"])
    with Client(server.target, model="adding", max_attempts=1, **kwargs) as client:
        with pytest.raises(serving.UnavailableError) as info:
            client.status(timeout_s=5)
        assert info.value.code == grpc.StatusCode.UNAVAILABLE


def test_rest_api_wants_the_same_bearer_token(server, certs):
    """--auth-token guards the REST API as it guards gRPC (REST is plaintext, as TF Serving's)."""
    with tls_client(server, certs) as client:
        client.wait_until_ready(timeout_s=60)
    for headers, status in [
        ({}, 401),
        ({"Authorization": "Bearer wrong"}, 401),
        ({"Authorization": "Bearer test-token"}, 200),
    ]:
        connection = http.client.HTTPConnection(server.rest, timeout=30)
        connection.request("GET", "/v1/models/adding", headers=headers)
        answer = connection.getresponse()
        body = json.loads(answer.read())
        connection.close()
        assert answer.status == status, body
        assert ("error" in body) == (status == 401), body
    assert body["model_version_status"][0]["state"] == "AVAILABLE"


def test_sigterm_finishes_requests_in_flight(server, certs):
    """Last in the module: stops the server. No request may fail except with UNAVAILABLE."""
    sent_at, outcomes, stop = 0.0, [], threading.Event()
    # long sequences: each request runs for milliseconds, so that one is surely inside the server at the signal
    x = np.random.default_rng(0).normal(size=(4, 3000, FEATURES)).astype(np.float32)

    def hammer(client: Client) -> None:
        while not stop.is_set():
            try:
                client.predict(x, timeout_s=30)
                outcomes.append(("ok", time.monotonic()))
            except serving.UnavailableError:
                outcomes.append(("unavailable", time.monotonic()))
                return
            except serving.ServingError as err:
                outcomes.append((repr(err), time.monotonic()))
                return

    with tls_client(server, certs, max_attempts=1) as client:
        client.wait_until_ready(timeout_s=60)
        client.predict(x)
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            workers = [pool.submit(hammer, client) for _ in range(4)]
            time.sleep(0.5)
            sent_at = time.monotonic()
            server.proc.send_signal(15)
            assert server.proc.wait(timeout=60) == 0, server.log()
            stop.set()
            for w in workers:
                w.result()
    assert {kind for kind, _ in outcomes} <= {"ok", "unavailable"}, outcomes
    assert any(kind == "ok" and at > sent_at for kind, at in outcomes)
    assert "stopped" in server.log()
