"""A threaded HTTP server for the conductor's endpoints, with limits slow or many clients cannot
get around.

The standard library's ThreadingHTTPServer (one thread per connection; an endpoint's work per
request is a few database or ZooKeeper round trips, so no framework is needed). It shares its
process's file descriptors with the ZooKeeper and database connections, so: at most
`max_connections` connections are served at once (beyond that a connection is answered 503 at
once and closed, from the accepting thread), and each request must arrive within
`request_deadline` seconds (JsonHandler answers 408). Both limits apply before any
authentication. An exception escaping a handler is logged through the server's `redact`,
never printed to stderr.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import traceback
from http.server import ThreadingHTTPServer
from typing import Any, TypeVar

from conductor.http.handler import DEFAULT_REQUEST_DEADLINE, HandlerRules, JsonHandler

log = logging.getLogger("conductor.http")

DEFAULT_MAX_CONNECTIONS = 64  # connections served at once; more are answered 503

_Server = TypeVar("_Server", bound="JsonServer")


def parse_address(address: str) -> tuple[str, int]:
    """HOST:PORT (or :PORT for all interfaces) -> (host, port); ValueError otherwise."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"HTTP address must be HOST:PORT, got {address!r}")
    return host.strip("[]") or "0.0.0.0", int(port)


_BUSY_BODY = json.dumps({"error": "too many connections; retry later"}).encode()
_BUSY_REPLY = (b"HTTP/1.0 503 Service Unavailable\r\nServer: zkconductor\r\n"
               b"Content-Type: application/json\r\nContent-Length: "
               + str(len(_BUSY_BODY)).encode()
               + b"\r\nRetry-After: 1\r\nConnection: close\r\n\r\n" + _BUSY_BODY)


class CappedHTTPServer(ThreadingHTTPServer):
    """ThreadingHTTPServer with at most `max_connections` connections (threads) at once."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[JsonHandler],
                 max_connections: int) -> None:
        self.max_connections = max_connections
        self.active = 0
        self._count_lock = threading.Lock()
        self._refusing = False
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._count_lock:
            full = self.active >= self.max_connections
            if not full:
                self.active += 1
                self._refusing = False
            first_refusal = full and not self._refusing
            self._refusing = self._refusing or full
        if full:
            if first_refusal:
                log.warning("%d connections open (the limit): answering 503 to new ones",
                            self.max_connections)
            self._refuse(request)
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._release()

    def _release(self) -> None:
        with self._count_lock:
            self.active -= 1

    @staticmethod
    def _refuse(request: socket.socket) -> None:
        """Answer 503 without blocking the accepting thread (a fresh socket's send buffer
        takes the few bytes at once; if not, the client just sees the connection close)."""
        with contextlib.suppress(OSError):
            request.setblocking(False)
            request.send(_BUSY_REPLY)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """An exception that escaped a handler (the handler replies 500 itself): logged
        redacted, never printed to stderr."""
        handler: type[JsonHandler] = self.RequestHandlerClass  # type: ignore[assignment]
        log.error("HTTP request from %s failed:\n%s", client_address,
                  handler.rules.redact(traceback.format_exc()))


class JsonServer:
    """A threaded HTTP server answering with `handler` (a JsonHandler subclass) under `rules`.

    `max_connections`: connections served at once (more are answered 503 at once).
    `attributes`: more class attributes bound to this server's handler class (what its
    routes need, e.g. the service they call). `name` names the serving thread."""

    def __init__(self, address: str, handler: type[JsonHandler], rules: HandlerRules, *,
                 max_connections: int = DEFAULT_MAX_CONNECTIONS, name: str = "http",
                 attributes: dict[str, Any] | None = None) -> None:
        host, port = parse_address(address)
        if rules.max_body < 1:
            raise ValueError(f"the body limit must be at least 1 byte, got {rules.max_body}")
        if max_connections < 1:
            raise ValueError(f"the connection limit must be at least 1, got {max_connections}")
        if not rules.request_deadline > 0:
            raise ValueError(
                f"the request deadline must be positive, got {rules.request_deadline}")
        bound = type(f"Bound{handler.__name__}", (handler,),
                     {**(attributes or {}), "rules": rules})
        self.httpd = CappedHTTPServer((host, port), bound, max_connections)
        self.name = name
        self._thread: threading.Thread | None = None

    @property
    def connections(self) -> int:
        """Connections being served now (each has its thread)."""
        return self.httpd.active

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    @property
    def url(self) -> str:
        host = str(self.httpd.server_address[0])
        return f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{self.port}"

    @property
    def serving(self) -> bool:
        return self._thread is not None

    def start(self: _Server) -> _Server:
        """Serve from a daemon thread (once; starting again does nothing)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self.httpd.serve_forever, name=self.name,
                                            daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting requests and close the socket (requests in progress finish)."""
        self.httpd.shutdown()
        self.httpd.server_close()
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self: _Server) -> _Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


__all__ = ["DEFAULT_MAX_CONNECTIONS", "DEFAULT_REQUEST_DEADLINE", "CappedHTTPServer",
           "JsonServer", "parse_address"]
