"""What the sync and asyncio clients share about channels: options, TLS, targets, retries.

Retries are deliberately narrow: only UNAVAILABLE (nothing reached a server, or the server
shed load), only for these idempotent read-only RPCs, at most `max_attempts` tries, and
all of them inside the one deadline the caller gave. Each retry moves to the next target,
so a dead replica costs one backoff, not a failed call.
"""

from __future__ import annotations

import itertools
import random
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc

__all__ = ["DEFAULT_MAX_MESSAGE_BYTES", "ChannelConfig", "RoundRobin", "backoff_s", "is_retryable"]

DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class ChannelConfig:
    """How to open a channel to each target; one instance shared by every channel of a client.

    TLS is on when any of `root_certificates`, `private_key`, `certificate_chain` is given,
    or when `tls=True` (then the system's root certificates are used). Client certificates
    (mutual TLS) need both `private_key` and `certificate_chain`.
    """

    targets: tuple[str, ...]
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    keepalive_s: float | None = 30.0
    tls: bool = False
    root_certificates: bytes | None = None
    private_key: bytes | None = None
    certificate_chain: bytes | None = None
    server_name_override: str | None = None
    extra_options: tuple[tuple[str, object], ...] = field(default_factory=tuple)

    @classmethod
    def create(cls, target: str | Sequence[str], **kwargs: Any) -> ChannelConfig:  # kwargs: the fields below `targets`
        targets = (target,) if isinstance(target, str) else tuple(target)
        if not targets or not all(isinstance(t, str) and t for t in targets):
            raise ValueError(f"target must be 'host:port' or a non-empty list of them, got {target!r}")
        if (kwargs.get("private_key") is None) != (kwargs.get("certificate_chain") is None):
            raise ValueError("client TLS needs both private_key and certificate_chain")
        tls = bool(kwargs.pop("tls", False)) or any(
            kwargs.get(k) is not None for k in ("root_certificates", "private_key", "certificate_chain")
        )
        return cls(targets=targets, tls=tls, **kwargs)

    def options(self) -> list[tuple[str, object]]:
        opts: list[tuple[str, object]] = [
            ("grpc.max_send_message_length", self.max_message_bytes),
            ("grpc.max_receive_message_length", self.max_message_bytes),
            # Retries are ours (bounded, UNAVAILABLE only); keep gRPC's own off.
            ("grpc.enable_retries", 0),
        ]
        if self.keepalive_s:
            opts += [
                ("grpc.keepalive_time_ms", int(self.keepalive_s * 1000)),
                ("grpc.keepalive_timeout_ms", 10_000),
                ("grpc.http2.max_pings_without_data", 0),
            ]
        if self.server_name_override:
            opts.append(("grpc.ssl_target_name_override", self.server_name_override))
        return opts + list(self.extra_options)

    def credentials(self) -> grpc.ChannelCredentials | None:
        if not self.tls:
            return None
        return grpc.ssl_channel_credentials(
            root_certificates=self.root_certificates,
            private_key=self.private_key,
            certificate_chain=self.certificate_chain,
        )

    def open(self, target: str) -> grpc.Channel:
        creds = self.credentials()
        if creds is None:
            return grpc.insecure_channel(target, options=self.options())
        return grpc.secure_channel(target, creds, options=self.options())

    def open_aio(self, target: str) -> grpc.aio.Channel:
        creds = self.credentials()
        if creds is None:
            return grpc.aio.insecure_channel(target, options=self.options())
        return grpc.aio.secure_channel(target, creds, options=self.options())


class RoundRobin:
    """Hands out indices 0..n-1 in turn, safely from many threads."""

    def __init__(self, n: int) -> None:
        self._n = n
        self._counter = itertools.count()
        self._lock = threading.Lock()

    def next(self) -> int:
        with self._lock:
            return next(self._counter) % self._n


def is_retryable(err: grpc.RpcError) -> bool:
    return callable(getattr(err, "code", None)) and err.code() == grpc.StatusCode.UNAVAILABLE


def backoff_s(attempt: int, *, base_s: float, cap_s: float) -> float:
    """Exponential backoff with jitter: uniform in [d/2, d], d = min(cap, base * 2**attempt)."""
    delay = min(cap_s, base_s * (2**attempt))
    return random.uniform(delay / 2, delay)
