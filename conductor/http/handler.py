"""The request handler every conductor endpoint builds on: JSON in, JSON out, within limits.

A subclass adds its routes (`handle_get`, `handle_post`, `handle_other`); this class keeps the
rules they all share:

- each request (request line, headers and body together, idle keep-alive time included) must
  arrive within the request deadline, else it is answered 408 and the connection closed (a
  socket timeout alone bounds each read: a client trickling bytes would never hit it);
- every answer is JSON, the standard library's own errors included (bad request line...);
- an unexpected exception is logged and answered 500, never printed to stderr;
- an optional bearer secret, compared in constant time;
- a JSON body needs a Content-Length and stays under the body limit (411, 400, 413);
- `GET /v1/health` answers 200 or 503 without authentication when the server has a health
  check (it reveals nothing but whether the service can work);
- paths and tracebacks pass through the server's `redact` before they reach the logs, so a
  secret in a URL (a completion token) never does.
"""

from __future__ import annotations

import contextlib
import hmac
import io
import json
import logging
import socket
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any

log = logging.getLogger("conductor.http")

HEALTH_PATH = "/v1/health"
DEFAULT_MAX_BODY = 1024 * 1024
DEFAULT_REQUEST_DEADLINE = 10.0  # seconds for a whole request: request line, headers, body
REPLY_TIMEOUT = 10.0  # seconds a reply's write may block on a client that does not read

HealthCheck = Callable[[], str | None]
"""None while the service can work, else what is wrong (answered 503)."""


def unchanged(text: str) -> str:
    """The redaction of a server whose paths and errors hold no secrets."""
    return text


class RequestDeadline(TimeoutError):
    """The client did not send its whole request within the request deadline."""


@dataclass(frozen=True)
class HandlerRules:
    """What one server's handlers enforce: bound to the handler class by the server."""

    secret: str | None = None
    max_body: int = DEFAULT_MAX_BODY
    request_deadline: float = DEFAULT_REQUEST_DEADLINE
    redact: Callable[[str], str] = unchanged
    health: HealthCheck | None = None


class _DeadlineReader(io.RawIOBase):
    """The socket's reading side, bounded by the handler's deadline for the whole request."""

    def __init__(self, sock: socket.socket, handler: JsonHandler) -> None:
        super().__init__()
        self._sock = sock
        self._handler = handler

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        remaining = self._handler.deadline - time.monotonic()
        if remaining <= 0:
            self._handler.timed_out = True
            raise RequestDeadline("the request was not received in time")
        self._sock.settimeout(remaining)
        try:
            return self._sock.recv_into(buffer)
        except TimeoutError:
            self._handler.timed_out = True
            raise RequestDeadline("the request was not received in time") from None


class JsonHandler(BaseHTTPRequestHandler):
    """One connection. `rules` is bound per server (see JsonServer); subclasses answer their
    routes in `handle_get`, `handle_post` and `handle_other` (PUT, DELETE, PATCH)."""

    rules: HandlerRules = HandlerRules()
    allowed_methods = "GET"  # the Allow header of a 405
    server_version = "zkconductor"
    timeout = REPLY_TIMEOUT
    deadline = 0.0  # time.monotonic() by which the current request must have arrived
    timed_out = False
    replied = False
    # until a request line is parsed (a 408 may be sent before that)
    requestline, request_version, command = "", "HTTP/1.0", ""

    def setup(self) -> None:
        self.deadline = time.monotonic() + self.rules.request_deadline
        super().setup()
        self.rfile.close()  # the makefile() reader: it would keep the socket's fd open
        self.rfile = io.BufferedReader(_DeadlineReader(self.connection, self))

    def handle_one_request(self) -> None:
        self.deadline = time.monotonic() + self.rules.request_deadline  # idle keep-alive counts
        self.timed_out = self.replied = False
        try:
            super().handle_one_request()  # a RequestDeadline is a TimeoutError: caught there
        except OSError as exc:  # the client went away
            log.debug("HTTP connection from %s ended: %s", self.address_string(), exc)
            self.close_connection = True
            return
        if self.timed_out and not self.replied:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.reply(408, {"error": f"the request was not received within "
                                          f"{self.rules.request_deadline:g} s"}, close=True)

    def do_GET(self) -> None:
        self._guarded(self._get)

    def do_POST(self) -> None:
        self._guarded(self.handle_post)

    def do_PUT(self) -> None:
        self._guarded(self.handle_other)

    do_DELETE = do_PATCH = do_PUT

    # -- routes: what subclasses override ---------------------------------------------------
    def handle_get(self) -> None:
        """A GET other than the health route."""
        if self.authorized():
            self.reply(404, {"error": "not found"})

    def handle_post(self) -> None:
        self.not_allowed()

    def handle_other(self) -> None:
        """PUT, DELETE or PATCH."""
        self.not_allowed()

    # -- tools for the routes ---------------------------------------------------------------
    def authorized(self) -> bool:
        """True without a secret, or with `Authorization: Bearer <secret>`; else answers 401."""
        secret = self.rules.secret
        if secret is None:
            return True
        given = self.headers.get("Authorization", "")
        scheme, _, credential = given.partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(
                credential.strip().encode(), secret.encode()):
            return True
        self.reply(401, {"error": "a valid bearer secret is required"},
                   {"WWW-Authenticate": 'Bearer realm="conductor"'})
        return False

    def read_json_body(self) -> Any:
        """The request's JSON body, or None after answering why it is refused (411 without a
        Content-Length, 413 over the body limit, 400 when short or not JSON)."""
        length_header = self.headers.get("Content-Length")
        if self.headers.get("Transfer-Encoding") or length_header is None:
            self.reply(411, {"error": "a Content-Length header is required"}, close=True)
            return None
        try:
            length = int(length_header)
            if length < 0:
                raise ValueError
        except ValueError:
            self.reply(400, {"error": "bad Content-Length"}, close=True)
            return None
        if length > self.rules.max_body:
            self.reply(413, {"error": f"the body has {length} bytes; the limit is "
                                      f"{self.rules.max_body}"}, close=True)
            return None
        data = self.rfile.read(length)
        if len(data) < length:  # the client closed its side early
            self.reply(400, {"error": "the body is shorter than its Content-Length"},
                       close=True)
            return None
        try:
            return json.loads(data)
        except RecursionError:
            self.reply(400, {"error": "the body is not JSON this server accepts: nested "
                                      "too deeply"})
            return None
        except (ValueError, UnicodeDecodeError) as exc:
            self.reply(400, {"error": f"the body is not JSON: {exc}"})
            return None

    def not_allowed(self) -> None:
        self.reply(405, {"error": f"method {self.command} not allowed; use "
                                  f"{self.allowed_methods}"},
                   {"Allow": self.allowed_methods})

    def reply(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None,
              *, close: bool = False) -> None:
        """Answer `body` as JSON with `status` (and `close` the connection after it)."""
        data = json.dumps(body).encode()
        self.connection.settimeout(REPLY_TIMEOUT)  # reading may have left a shorter one
        self.replied = True
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(data)

    # -- internals --------------------------------------------------------------------------
    def _get(self) -> None:
        health = self.rules.health
        if health is not None and self.path == HEALTH_PATH:  # open to load balancers
            problem = health()
            self.reply(200 if problem is None else 503,
                       {"status": "ok" if problem is None else problem})
            return
        self.handle_get()

    def _guarded(self, step: Callable[[], None]) -> None:
        """Run `step`; an unexpected exception is logged (redacted) and answered 500."""
        try:
            step()
        except RequestDeadline:
            raise  # answered 408 by handle_one_request
        except Exception:
            redact = self.rules.redact
            log.error("%s %s failed:\n%s", self.command, redact(self.path),
                      redact(traceback.format_exc()))
            self.close_connection = True
            if not self.replied:
                with contextlib.suppress(OSError):
                    self.reply(500, {"error": "internal error"}, close=True)

    # -- logging without secrets ------------------------------------------------------------
    def log_message(self, format: str, *args: Any) -> None:
        log.info("%s %s", self.address_string(), self.rules.redact(format % args))

    def send_error(self, code: int, message: str | None = None, explain: str | None = None
                   ) -> None:
        """The stdlib's own errors (bad request line, unsupported method...), as JSON."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.reply(code, {"error": self.rules.redact(
                message or self.responses.get(code, ("",))[0])})
