"""Is our ZooKeeper session provably alive right now? A lease from acknowledged sends.

The server expires a session when it has heard nothing from the client for the negotiated
timeout. Whenever a reply (to a request, a ping or the connect handshake) arrives, the server had
received the matching send, so the session lives at least until that send's time plus the
timeout. `alive()` compares the clock with the newest such bound.

Why kazoo's own "connected" is not enough: a process stopped (SIGSTOP, a long GC pause, a frozen
VM) past its session timeout resumes believing it is connected until its connection thread gets
around to noticing the dead socket. In that window it could start work on a job whose claim has
already vanished with the session; the lease has expired by then, so a caller that asks `alive()`
right before acting does not. Timestamps are taken before each send (a conservative bound) with
the monotonic clock, which keeps counting while a process is stopped.

kazoo internals used: ConnectionHandler._connect, ._send_request, ._send_ping, ._read_socket,
._read_response and ._pending / .ping_outstanding (kazoo>=2.10,<2.12; tests/jobboard/test_lease.py
pins the behaviour).
"""

from __future__ import annotations

import threading
import time
from typing import Any

from kazoo.client import KazooClient

from jobboard.zk.zkwatch import PersistentWatchConnectionHandler, registry_of

SAFETY = 0.9
"""Fraction of the session timeout the lease lasts after an acknowledged send (margin for the
server's clock rate and scheduling)."""


class LeasedConnectionHandler(PersistentWatchConnectionHandler):
    """kazoo's connection handler (with persistent watches) that also keeps the session lease."""

    _lease_lock: threading.Lock
    _acked_at: float
    _timeout_s: float
    _sent_at: dict[int, float]
    _ping_sent_at: float

    def _connect(self, host: str, hostip: str, port: int) -> Any:
        started = time.monotonic()
        self._sent_at = {}
        read_timeout, connect_timeout = super()._connect(host, hostip, port)
        with self._lease_lock:
            self._timeout_s = read_timeout * 1.5 / 1000.0  # read timeout is 2/3 of the session's
            self._acked_at = started
        return read_timeout, connect_timeout

    def _send_request(self, read_timeout: float, connect_timeout: float) -> Any:
        started = time.monotonic()
        pending = self.client._pending
        before = len(pending)
        result = super()._send_request(read_timeout, connect_timeout)
        if len(pending) > before:
            self._sent_at[pending[-1][2]] = started
        return result

    def _send_ping(self, connect_timeout: float) -> Any:
        self._ping_sent_at = time.monotonic()
        return super()._send_ping(connect_timeout)

    def _read_socket(self, read_timeout: float) -> Any:
        pinging = self.ping_outstanding.is_set()
        result = super()._read_socket(read_timeout)
        if pinging and not self.ping_outstanding.is_set():
            self._acknowledged(self._ping_sent_at)
        return result

    def _read_response(self, header: Any, buffer: bytes, offset: int) -> Any:
        sent = self._sent_at.pop(header.xid, None)
        if sent is not None:
            self._acknowledged(sent)
        return super()._read_response(header, buffer, offset)

    def _acknowledged(self, sent: float) -> None:
        with self._lease_lock:
            self._acked_at = max(self._acked_at, sent)

    def lease_remaining(self) -> float:
        """Seconds the session is still provably alive (<= 0: not provably)."""
        with self._lease_lock:
            return self._acked_at + SAFETY * self._timeout_s - time.monotonic()


def install(client: KazooClient) -> LeasedConnectionHandler:
    """Give a not yet started client the leased handler (with persistent-watch support)."""
    registry_of(client)
    connection = client._connection
    if not isinstance(connection, LeasedConnectionHandler):
        connection._lease_lock = threading.Lock()
        connection._acked_at = float("-inf")
        connection._timeout_s = client._session_timeout / 1000.0
        connection._sent_at = {}
        connection._ping_sent_at = float("-inf")
        connection.__class__ = LeasedConnectionHandler
    return connection  # type: ignore[no-any-return]


def alive(client: KazooClient) -> bool:
    """True while `client` is connected and its session provably not expired."""
    connection = client._connection
    if not isinstance(connection, LeasedConnectionHandler) or not client.connected:
        return False
    return connection.lease_remaining() > 0
