"""The HTTP server under the REST API: waitress, started beside the gRPC server in the same process.

Why waitress: the process already answers gRPC on a pool of threads that block in the batcher or in
``Session.run``; a WSGI application on a threaded server does the same, calling the same blocking
``serving.service`` from its worker threads, with no event loop to bridge. waitress reads each request whole on
its one I/O thread before a worker sees it, so a slow or stalled client holds no worker (a thread-per-connection
server such as cheroot's, or werkzeug's development server, would give it one); it bounds the body
(``max_request_body_size``, set to ``--max-message-bytes``: a longer body is answered 413 before it is read
further), parses HTTP/1.1 with keep-alive and chunked bodies, and is pure Python with no dependencies.

Four things waitress 3.0.2 gets wrong under hostile bytes are guarded here, in its request parser (``_Parser``),
so that every request gets an HTTP answer (issue 30); each guard names the waitress behaviour it covers.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import waitress.server
from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser, ParsingError

__all__ = ["RestServer"]

log = logging.getLogger("serving.server")


class _Parser(HTTPRequestParser):
    """waitress's parser of one request, with its hostile-input gaps closed."""

    def parse_header(self, header_plus: bytes) -> None:
        try:
            super().parse_header(header_plus)
        except ValueError as err:
            # waitress catches only its own ParsingError here. Two ValueErrors escape it, and waitress then drops
            # the connection without an answer and logs "uncaptured python exception": urlsplit's on an
            # absolute-form target with a broken IPv6 host ("GET http://[/v1/... HTTP/1.1"), and int()'s on a
            # Content-Length of more than Python's 4,300 digits. Both are a malformed request: 400.
            raise ParsingError(f"Malformed request line or header ({type(err).__name__})") from None

    def received(self, data: bytes) -> int:
        consumed = super().received(data)
        if self.completed:
            # waitress sends "100 Continue" whenever the headers asked for it, even for a request it has already
            # refused (a Content-Length over max_request_body_size: the client then sends the whole body before it
            # reads the 413) or one that is already whole (Content-Length: 0: waitress then marks it incomplete
            # again and waits for a body that never comes, with no answer). A request that is complete, refused or
            # whole, gets its answer instead of the invitation.
            self.expect_continue = False
        return consumed


class _Channel(HTTPChannel):
    parser_class = _Parser


class RestServer:
    """A WSGI application served on host:port by waitress's worker threads; ``start()`` then ``stop()``."""

    def __init__(self, app: Callable, *, host: str, port: int, threads: int, max_body_bytes: int) -> None:
        self._map: dict = {}  # waitress's socket map, ours so that stop() can close the open connections
        self._server = waitress.server.create_server(
            app,
            map=self._map,
            host=host,
            port=port,
            threads=threads,
            max_request_body_size=max_body_bytes,
            asyncore_use_poll=True,
            ident="keras-lstm",
            clear_untrusted_proxy_headers=True,
        )
        for listener in list(self._map.values()):  # one per bound address; each connection parses with the guards
            listener.channel_class = _Channel
        if isinstance(self._server, waitress.server.MultiSocketServer):
            # A host of several addresses (localhost: 127.0.0.1 and ::1) gets one listener each, and no
            # effective_port of its own: the first listener's port (the same for all unless port is 0).
            self.port = int(self._server.effective_listen[0][1])
        else:
            self.port = int(self._server.getsockname()[1])
        self._thread = threading.Thread(target=self._server.run, name="rest-io", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Close the listening socket and every connection, then stop the workers (the caller has drained the
        requests in flight)."""
        self._server.close()
        for channel in list(self._map.values()):
            channel.handle_close()
        self._thread.join(timeout_s)
        self._server.task_dispatcher.shutdown(timeout=timeout_s)  # type: ignore[arg-type]  # stubs say int; floats work
