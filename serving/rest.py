"""TF Serving's REST API as a WSGI application: a thin adapter over ``serving.service``, the gRPC side's path.

Routes, as TF Serving's http_rest_api_handler matches them (case-insensitive, names and labels %-decoded):

    POST /v1/models/NAME[/versions/V | /labels/L]:predict       -> Service.predict (row or columnar JSON)
    GET  /v1/models/NAME[/versions/V | /labels/L]               -> Service.status (GetModelStatusResponse)
    GET  /v1/models/NAME[/versions/V | /labels/L]/metadata      -> Service.metadata (GetModelMetadataResponse)
    GET  <the monitoring config's path>                         -> Prometheus metrics, when configured

``:classify`` and ``:regress`` answer UNIMPLEMENTED (as the gRPC side's Classify and Regress); another path
under /v1/ is TF Serving's INVALID_ARGUMENT "Malformed request", any other path 404. Bodies are JSON
(``serving.json_tensor``), and status and metadata are the response messages rendered by protobuf's
json_format as TF Serving renders them (``always_print_primitive_fields``; metadata with proto field names).

Every failure is ``{"error": "<message>"}`` (the message at most 1 KB, as on gRPC) with the HTTP status TF
Serving's http_server.cc gives its status code (``HTTP_STATUS``): a bad request 400, an unknown model 404, a
full batch queue or a draining server 503, a passed deadline 504, an answer over the element or size limit
(``init_state``'s batch, say) 429. A bug in the server answers 500 and logs its traceback; nothing a client sends does.

Under hostile input (issue 30, docs/rest.md): a body is counted before it is parsed and refused there if it holds
more values than the element limit (``json_tensor``); bodies are parsed at most ``--max-message-bytes`` at a time
(``ParseBudget``, within the request's deadline); an answer is bounded before the model runs (``admission``) and
its JSON by ``--max-message-bytes`` (429); a gzip body is inflated to at most ``--max-message-bytes``, another
``Content-Encoding`` is UNIMPLEMENTED (501).
"""

from __future__ import annotations

import contextlib
import hmac
import http
import json
import logging
import re
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from urllib.parse import unquote

import grpc
from google.protobuf import json_format
from google.protobuf.message import Message
from tensorflow_serving.apis import get_model_metadata_pb2, get_model_status_pb2, model_pb2, predict_pb2

from serving import json_tensor
from serving.errors import BadRequestError, ServingError, UnauthenticatedError, UnimplementedError, bound_details, clip
from serving.interceptors import Drain
from serving.metrics import Metrics
from serving.service import Service

__all__ = ["HTTP_STATUS", "ParseBudget", "RestApi", "RestOptions", "http_status"]

log = logging.getLogger("serving.server")
C = grpc.StatusCode
# TF Serving's ToHTTPStatusCode (model_servers/http_server.cc), code by code.
HTTP_STATUS: dict[grpc.StatusCode, int] = {
    C.OK: 200,
    C.CANCELLED: 499,
    C.UNKNOWN: 500,
    C.INVALID_ARGUMENT: 400,
    C.DEADLINE_EXCEEDED: 504,
    C.NOT_FOUND: 404,
    C.ALREADY_EXISTS: 409,
    C.PERMISSION_DENIED: 403,
    C.RESOURCE_EXHAUSTED: 429,
    C.FAILED_PRECONDITION: 400,
    C.ABORTED: 409,
    C.OUT_OF_RANGE: 400,
    C.UNIMPLEMENTED: 501,
    C.INTERNAL: 500,
    C.UNAVAILABLE: 503,
    C.DATA_LOSS: 500,
    C.UNAUTHENTICATED: 401,
}
# TF Serving's kPredictionApiGegex and kModelStatusApiRegex (model_servers/http_rest_api_util.cc).
_PREDICT = re.compile(r"/v1/models/([^/:]+)(?:/versions/(\d+)|/labels/([^/:]+))?:(classify|regress|predict)", re.I)
_STATUS = re.compile(r"/v1/models(?:/([^/:]+))?(?:/versions/(\d+)|/labels/([^/:]+))?(?:/(metadata))?", re.I)
_API = re.compile(r"/v1/.*", re.I | re.S)
_JSON = "application/json"
_INT64_MAX = (1 << 63) - 1


@dataclass(frozen=True)
class RestOptions:
    """``keras-lstm serve --rest-api-timeout-in-ms``, ``--auth-token`` and ``--monitoring-config-file``."""

    timeout_s: float | None = 30.0  # each predict's deadline (TF Serving's --rest_api_timeout_in_ms; None: none)
    auth_token: str | None = None  # set: /v1/ needs "Authorization: Bearer <token>", as gRPC's call metadata
    metrics_path: str | None = None  # set: Prometheus metrics served there
    parse_bytes: int = 64 << 20  # bytes of bodies the workers parse at once (the server: --max-message-bytes)


class ParseBudget:
    """The bytes of request bodies being parsed at once, over all REST workers (issue 30).

    Python's json makes 7.5 to 28 bytes of objects for each byte of body (a flat list of floats; lists of one
    value), so eight workers parsing at once could hold 8 x 28 bodies. A body waits here, within its deadline,
    until the bodies being parsed leave room for it; one larger than the whole budget is parsed alone. json.loads
    holds the GIL, so parses never ran side by side and the wait costs no throughput. A request whose deadline
    passes while it waits is answered DEADLINE_EXCEEDED (504)."""

    def __init__(self, capacity: int) -> None:
        self._capacity, self._in_use = capacity, 0
        self._changed = threading.Condition()

    @contextlib.contextmanager
    def hold(self, size: int, timeout_s: float | None) -> Iterator[None]:
        with self._changed:
            if not self._changed.wait_for(
                lambda: self._in_use == 0 or self._in_use + size <= self._capacity, timeout_s
            ):
                raise ServingError(
                    f"the request's deadline passed while other bodies were being parsed ({size} bytes waited)",
                    code=C.DEADLINE_EXCEEDED,
                )
            self._in_use += size
        try:
            yield
        finally:
            with self._changed:
                self._in_use -= size
                self._changed.notify_all()


def http_status(code: grpc.StatusCode) -> int:
    """The HTTP status TF Serving answers for a status code."""
    return HTTP_STATUS.get(code, 500)


class RestApi:
    """The WSGI application; each call runs on one of the HTTP server's worker threads."""

    def __init__(self, service: Service, drain: Drain, options: RestOptions, metrics: Metrics | None = None) -> None:
        self._service = service
        self._drain = drain
        self._options = options
        self._metrics = metrics
        self._token = f"Bearer {options.auth_token}".encode() if options.auth_token else None
        self._parsing = ParseBudget(options.parse_bytes)

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "")
        path = _target_path(environ.get("REQUEST_URI") or environ.get("PATH_INFO", ""))
        content_type = _JSON
        try:
            if self._options.metrics_path and path == self._options.metrics_path and self._metrics is not None:
                status, body, content_type = 200, self._metrics.page(), self._metrics.content_type
            elif _API.fullmatch(path):
                self._authorize(environ)
                with self._drain.call():
                    status, body = 200, self._route(method, path, environ)
            else:
                status, body = 404, json_tensor.error_json(f"Not found: {clip(path)}; the REST API answers under /v1/")
        except ServingError as err:
            status, body = http_status(err.code), json_tensor.error_json(bound_details(err.details))
        except Exception as err:
            log.exception("REST %s %s failed", method, clip(path))
            status, body = 500, json_tensor.error_json(bound_details(f"{type(err).__name__}: {err}"))
        start_response(_status_line(status), [("Content-Type", content_type), ("Content-Length", str(len(body)))])
        return [body]

    def _authorize(self, environ: dict) -> None:
        if self._token is None:
            return
        sent = environ.get("HTTP_AUTHORIZATION", "").encode("latin-1", "replace")
        if not hmac.compare_digest(sent, self._token):
            raise UnauthenticatedError("missing or wrong 'Authorization: Bearer' header", code=C.UNAUTHENTICATED)

    def _route(self, method: str, path: str, environ: dict) -> bytes:
        if method == "POST" and (match := _PREDICT.fullmatch(path)):
            name, version, label, verb = match.groups()
            spec = _model_spec(name, version, label)
            if verb.lower() != "predict":
                raise UnimplementedError(
                    f"{verb.capitalize()} is not supported by the local server; use predict", code=C.UNIMPLEMENTED
                )
            body = environ["wsgi.input"].read()
            encoding = environ.get("HTTP_CONTENT_ENCODING", "identity").strip().lower()
            if encoding == "gzip":  # as TF Serving's HTTP server inflates it, to at most the body limit
                body = _gunzip(body, self._service.limits.max_answer_bytes)
            elif encoding not in ("", "identity"):
                raise UnimplementedError(
                    f"Content-Encoding {clip(encoding, 32)} is not supported; send the JSON body uncompressed or gzip",
                    code=C.UNIMPLEMENTED,
                )
            return self._predict(spec, body)
        if method == "GET" and (match := _STATUS.fullmatch(path)):
            name, version, label, metadata = match.groups()
            if not name:  # TF Serving does not list every model either
                raise BadRequestError("Missing model name in request.", code=C.INVALID_ARGUMENT)
            spec = _model_spec(name, version, label)
            return self._metadata(spec) if metadata else self._status(spec)
        raise BadRequestError(f"Malformed request: {clip(method, 16)} {clip(path)}", code=C.INVALID_ARGUMENT)

    def _predict(self, spec: model_pb2.ModelSpec, body: bytes) -> bytes:
        request = predict_pb2.PredictRequest()
        request.model_spec.CopyFrom(spec)
        limits, timeout_s = self._service.limits, self._options.timeout_s
        deadline = None if timeout_s is None else time.monotonic() + timeout_s  # the wait to parse counts in it
        form = json_tensor.fill_predict_request(
            body,
            lambda signature: self._service.input_signature(request.model_spec, signature),
            request,
            limits,
            parsing=lambda size: self._parsing.hold(size, timeout_s),
        )
        left_s = None if deadline is None else max(deadline - time.monotonic(), 0.001)
        response = self._service.predict(request, timeout_s=left_s, api="REST")
        return json_tensor.predict_response_json(response.outputs, form, limits.max_answer_bytes)

    def _status(self, spec: model_pb2.ModelSpec) -> bytes:
        response = self._service.status(get_model_status_pb2.GetModelStatusRequest(model_spec=spec))
        return json_format.MessageToJson(response, always_print_fields_with_no_presence=True, indent=1).encode()

    def _metadata(self, spec: model_pb2.ModelSpec) -> bytes:
        request = get_model_metadata_pb2.GetModelMetadataRequest(model_spec=spec, metadata_field=["signature_def"])
        response = self._service.metadata(request)
        signature_defs = get_model_metadata_pb2.SignatureDefMap()
        response.metadata["signature_def"].Unpack(signature_defs)
        as_dict = {"model_spec": _dict(response.model_spec), "metadata": {"signature_def": _dict(signature_defs)}}
        return json.dumps(as_dict, indent=1).encode()


def _dict(message: Message) -> dict:
    return json_format.MessageToDict(
        message, always_print_fields_with_no_presence=True, preserving_proto_field_name=True
    )


def _model_spec(name: str, version: str | None, label: str | None) -> model_pb2.ModelSpec:
    """The ModelSpec of a URL's parts (TF Serving's ParseModelInfo: %-decoded name and label, int64 version)."""
    spec = model_pb2.ModelSpec(name=unquote(name, errors="replace"))
    if version is not None:
        if len(version) > 19 or int(version) > _INT64_MAX:
            raise BadRequestError(f"Failed to convert version: {clip(version)} to numeric.", code=C.INVALID_ARGUMENT)
        spec.version.value = int(version)
    if label is not None:
        spec.version_label = unquote(label, errors="replace")
    return spec


def _gunzip(body: bytes, limit: int) -> bytes:
    """A gzip body inflated, never past ``limit`` bytes (--max-message-bytes bounds what is parsed, as it bounds
    a plain body): a body that would inflate further is refused once ``limit`` + 1 bytes are out."""
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as err:
        raise BadRequestError(
            f"Content-Encoding gzip: the body is not gzip data ({clip(err, 80)})", code=C.INVALID_ARGUMENT
        ) from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise BadRequestError(
            f"Content-Encoding gzip: the body inflates past the server's limit of {limit} bytes (--max-message-bytes)",
            code=C.INVALID_ARGUMENT,
        )
    if not inflater.eof or inflater.unused_data:
        raise BadRequestError("Content-Encoding gzip: the body is not one whole gzip member", code=C.INVALID_ARGUMENT)
    return out


def _target_path(target: str) -> str:
    """The path of a request target as it was sent, for the routes (TF Serving matches them on the raw path):
    origin form ``/path?query`` or absolute form ``http://host/path?query``. Never raises, whatever the bytes
    (``urlsplit`` raises ValueError on a target such as ``//[/v1/models/m``)."""
    path = target.split("#", 1)[0].split("?", 1)[0]
    scheme, sep, rest = path.partition("://")
    if sep and scheme.isalpha():
        path = rest[rest.find("/") :] if "/" in rest else "/"
    return path


def _status_line(status: int) -> str:
    try:
        return f"{status} {http.HTTPStatus(status).phrase}"
    except ValueError:
        return f"{status} Client Closed Request" if status == 499 else f"{status} Error"
