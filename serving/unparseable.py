"""One rate-limited log line for request bodies gRPC cannot parse, instead of a traceback each.

gRPC Python parses a request before any servicer or interceptor code sees it; when parsing fails it
answers INTERNAL "Exception deserializing request!" (TF Serving's C++ gRPC answers INTERNAL too) and
logs "Exception deserializing message!" with the parser's traceback through the ``grpc._common``
logger: about 450 bytes per bad body, so any client can flood the log. ``UnparseableBodies`` is a
logging filter on that logger: it turns such a record into one line without the traceback, lets at
most one through per ``every_s`` seconds, and says how many it held back since the last one. Other
records of the logger pass unchanged. A filter, rather than a deserializer of our own, so that every
service (health and reflection included, streaming ones too) is covered and the status stays gRPC's.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from serving.errors import clip

__all__ = ["UnparseableBodies", "install"]

GRPC_LOGGER = "grpc._common"
_MARK = "Exception deserializing"


class UnparseableBodies(logging.Filter):
    """Rewrites gRPC's "Exception deserializing message!" records to one line, at most one per every_s."""

    def __init__(self, every_s: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.every_s = every_s
        self._clock = clock
        self._lock = threading.Lock()
        self._next_at = float("-inf")
        self._held = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if not str(record.msg).startswith(_MARK):
            return True
        error = record.exc_info[1] if record.exc_info else None
        with self._lock:
            now = self._clock()
            if now < self._next_at:
                self._held += 1
                return False
            held, self._held, self._next_at = self._held, 0, now + self.every_s
        record.msg = "unparseable request body answered INTERNAL (%s); %d more since the last such line"
        record.args = (clip(f"{type(error).__name__}: {error}" if error else "no detail", 200), held)
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        return True


def install(every_s: float = 10.0) -> UnparseableBodies:
    """Put one UnparseableBodies filter on gRPC's logger (once per process); returns it."""
    logger = logging.getLogger(GRPC_LOGGER)
    for existing in logger.filters:
        if isinstance(existing, UnparseableBodies):
            return existing
    log_filter = UnparseableBodies(every_s)
    logger.addFilter(log_filter)
    return log_filter
