"""The HTTP callback endpoint: `POST /v1/callbacks/<token>` completes a delegation.

Served by `conductor serve --http ADDR` and by `conductor run --http ADDR` with the standard
library's ThreadingHTTPServer (one thread per request; the work per request is a few database
and ZooKeeper round trips, so no framework is needed). Body: a JSON object with exactly one of
"result" (any JSON) or "error" (a message). Every answer is JSON:

    200 {"status": "completed", "job", "execution", "task", "attempt", "outcome", "job_state"}
    400 bad JSON / bad completion        401 missing or wrong bearer secret
    404 unknown (or malformed) token      405 not POST          409 already completed / task
    408 request not received in time      411 no Content-Length                     finished
    413 body over the limit               500 a bug (logged, token redacted)
    503 database or ZooKeeper unavailable, or too many connections (retry later)

`GET /v1/health` answers 200 while ZooKeeper is connected (503 otherwise), without
authentication. With a secret set, every other request needs `Authorization: Bearer <secret>`
(compared in constant time). Tokens never
reach the logs: access log lines show `/v1/callbacks/zkc_<redacted>`.

Slow or many clients cannot tie the process up (it shares its file descriptors with the
ZooKeeper and database connections under `conductor run --http`): at most `max_connections`
connections are served at once (one thread each; beyond that a connection is answered 503 at
once and closed, from the accepting thread), and each request (request line, headers and body
together, idle keep-alive time included) must arrive within `request_deadline` seconds, else
it is answered 408 and the connection closed. Both limits apply before the bearer check.
"""

from __future__ import annotations

import contextlib
import hmac
import io
import json
import logging
import socket
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from conductor.delegation.callbacks import Callbacks
from conductor.delegation.errors import InvalidCompletion
from conductor.engine.delegated.tokens import redact
from jobboard.errors import BoardUnavailable
from persistence.errors import DelegationAlreadyCompleted, StoreUnavailable, UnknownDelegation

log = logging.getLogger("conductor.http")

CALLBACK_PREFIX = "/v1/callbacks/"
HEALTH_PATH = "/v1/health"
DEFAULT_MAX_BODY = 1024 * 1024
DEFAULT_MAX_CONNECTIONS = 64  # connections served at once; more are answered 503
DEFAULT_REQUEST_DEADLINE = 10.0  # seconds for a whole request: request line, headers, body
REPLY_TIMEOUT = 10.0  # seconds a reply's write may block on a client that does not read


def parse_address(address: str) -> tuple[str, int]:
    """HOST:PORT (or :PORT for all interfaces) -> (host, port); ValueError otherwise."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"HTTP address must be HOST:PORT, got {address!r}")
    return host.strip("[]") or "0.0.0.0", int(port)


class RequestDeadline(TimeoutError):
    """The client did not send its whole request within the request deadline."""


_BUSY_BODY = json.dumps({"error": "too many connections; retry later"}).encode()
_BUSY_REPLY = (b"HTTP/1.0 503 Service Unavailable\r\nServer: zkconductor\r\n"
               b"Content-Type: application/json\r\nContent-Length: "
               + str(len(_BUSY_BODY)).encode()
               + b"\r\nRetry-After: 1\r\nConnection: close\r\n\r\n" + _BUSY_BODY)


class _CappedHTTPServer(ThreadingHTTPServer):
    """ThreadingHTTPServer with at most `max_connections` connections (threads) at once."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[CallbackHandler],
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
        """An exception that escaped a handler (the handler replies 500 itself): logged with
        tokens redacted, never printed to stderr."""
        log.error("HTTP request from %s failed:\n%s", client_address,
                  redact(traceback.format_exc()))


class CallbackServer:
    """A threaded HTTP server completing delegations through `callbacks`.

    `max_connections`: connections served at once (default 64; more are answered 503 at
    once). `request_deadline`: seconds a client has to send a whole request (default 10;
    then 408 and the connection is closed)."""

    def __init__(self, address: str, callbacks: Callbacks, *, secret: str | None = None,
                 max_body: int = DEFAULT_MAX_BODY,
                 max_connections: int = DEFAULT_MAX_CONNECTIONS,
                 request_deadline: float = DEFAULT_REQUEST_DEADLINE) -> None:
        host, port = parse_address(address)
        if max_body < 1:
            raise ValueError(f"the body limit must be at least 1 byte, got {max_body}")
        if max_connections < 1:
            raise ValueError(f"the connection limit must be at least 1, got {max_connections}")
        if not request_deadline > 0:
            raise ValueError(f"the request deadline must be positive, got {request_deadline}")
        handler = type("BoundCallbackHandler", (CallbackHandler,), {
            "callbacks": callbacks, "secret": secret or None, "max_body": max_body,
            "request_deadline": float(request_deadline)})
        self.httpd = _CappedHTTPServer((host, port), handler, max_connections)
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

    def start(self) -> CallbackServer:
        if self._thread is not None:
            return self
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="http-callbacks",
                                        daemon=True)
        self._thread.start()
        log.info("serving task callbacks on %s%s<token>", self.url, CALLBACK_PREFIX)
        return self

    def stop(self) -> None:
        """Stop accepting requests and close the socket (requests in progress finish)."""
        self.httpd.shutdown()
        self.httpd.server_close()
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> CallbackServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _DeadlineReader(io.RawIOBase):
    """The socket's reading side, bounded by the handler's deadline for the whole request (a
    socket timeout alone bounds each read: a client trickling bytes would never hit it)."""

    def __init__(self, sock: socket.socket, handler: CallbackHandler) -> None:
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


class CallbackHandler(BaseHTTPRequestHandler):
    """One connection. Class attributes are bound per server (see CallbackServer)."""

    callbacks: Callbacks
    secret: str | None
    max_body: int
    request_deadline: float = DEFAULT_REQUEST_DEADLINE
    server_version = "zkconductor"
    timeout = REPLY_TIMEOUT
    deadline = 0.0  # time.monotonic() by which the current request must have arrived
    timed_out = False
    replied = False
    # until a request line is parsed (a 408 may be sent before that)
    requestline, request_version, command = "", "HTTP/1.0", ""

    def setup(self) -> None:
        self.deadline = time.monotonic() + self.request_deadline
        super().setup()
        self.rfile.close()  # the makefile() reader: it would keep the socket's fd open
        self.rfile = io.BufferedReader(_DeadlineReader(self.connection, self))

    def handle_one_request(self) -> None:
        self.deadline = time.monotonic() + self.request_deadline  # idle keep-alive counts
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
                self._reply(408, {"error": f"the request was not received within "
                                           f"{self.request_deadline:g} s"}, close=True)

    def do_POST(self) -> None:
        self._guarded(self._post)

    def do_GET(self) -> None:
        self._guarded(self._get)

    def do_PUT(self) -> None:
        self._guarded(self._not_allowed)

    do_DELETE = do_PATCH = do_PUT

    def _guarded(self, step: Any) -> None:
        """Run `step`; an unexpected exception is logged (token redacted) and answered 500."""
        try:
            step()
        except RequestDeadline:
            raise  # answered 408 by handle_one_request
        except Exception:
            log.error("%s %s failed:\n%s", self.command, redact(self.path),
                      redact(traceback.format_exc()))
            self.close_connection = True
            if not self.replied:
                with contextlib.suppress(OSError):
                    self._reply(500, {"error": "internal error"}, close=True)

    def _post(self) -> None:
        if not self._authorized():
            return
        if not self.path.startswith(CALLBACK_PREFIX):
            self._reply(404, {"error": "not found"})
            return
        token = self.path[len(CALLBACK_PREFIX):]
        body = self._body()
        if body is None:
            return
        self._complete(token, body)

    def _get(self) -> None:
        if self.path == HEALTH_PATH:  # open to load balancers: it reveals nothing
            alive = self.callbacks.board.connected
            self._reply(200 if alive else 503,
                        {"status": "ok" if alive else "zookeeper unavailable"})
            return
        if not self._authorized():
            return
        if self.path.startswith(CALLBACK_PREFIX):
            self._not_allowed()
        else:
            self._reply(404, {"error": "not found"})

    # -- steps ------------------------------------------------------------------------------
    def _authorized(self) -> bool:
        if self.secret is None:
            return True
        given = self.headers.get("Authorization", "")
        scheme, _, credential = given.partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(
                credential.strip().encode(), self.secret.encode()):
            return True
        self._reply(401, {"error": "a valid bearer secret is required"},
                    {"WWW-Authenticate": 'Bearer realm="conductor"'})
        return False

    def _body(self) -> Any:
        length_header = self.headers.get("Content-Length")
        if self.headers.get("Transfer-Encoding") or length_header is None:
            self._reply(411, {"error": "a Content-Length header is required"}, close=True)
            return None
        try:
            length = int(length_header)
            if length < 0:
                raise ValueError
        except ValueError:
            self._reply(400, {"error": "bad Content-Length"}, close=True)
            return None
        if length > self.max_body:
            self._reply(413, {"error": f"the body has {length} bytes; the limit is "
                                       f"{self.max_body}"}, close=True)
            return None
        data = self.rfile.read(length)
        if len(data) < length:  # the client closed its side early
            self._reply(400, {"error": "the body is shorter than its Content-Length"},
                        close=True)
            return None
        try:
            return json.loads(data)
        except RecursionError:
            self._reply(400, {"error": "the body is not JSON this server accepts: nested "
                                       "too deeply"})
            return None
        except (ValueError, UnicodeDecodeError) as exc:
            self._reply(400, {"error": f"the body is not JSON: {exc}"})
            return None

    def _complete(self, token: str, body: Any) -> None:
        if not isinstance(body, dict) or set(body) not in ({"result"}, {"error"}):
            self._reply(400, {"error": 'the body must be a JSON object with exactly one of '
                                       '"result" or "error"'})
            return
        try:
            if "error" in body:
                if not isinstance(body["error"], str):
                    raise InvalidCompletion('"error" must be a message (a string)')
                report = self.callbacks.complete(token, error=body["error"])
            else:
                report = self.callbacks.complete(token, result=body["result"])
        except UnknownDelegation:
            self._reply(404, {"error": "unknown token"})
        except DelegationAlreadyCompleted as exc:
            self._reply(409, {"error": redact(str(exc)), "kind": type(exc).__name__})
        except InvalidCompletion as exc:
            self._reply(400, {"error": redact(str(exc))})
        except (StoreUnavailable, BoardUnavailable) as exc:
            log.warning("callback not recorded, service unavailable: %s", redact(str(exc)))
            self._reply(503, {"error": "temporarily unavailable; retry later"},
                        {"Retry-After": "5"})
        except Exception:
            log.error("callback failed:\n%s", redact(traceback.format_exc()))
            self._reply(500, {"error": "internal error"})
        else:
            self._reply(200, report.to_json())

    def _not_allowed(self) -> None:
        self._reply(405, {"error": f"method {self.command} not allowed; use POST"},
                    {"Allow": "POST"})

    def _reply(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None,
               *, close: bool = False) -> None:
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

    # -- logging without tokens -------------------------------------------------------------
    def log_message(self, format: str, *args: Any) -> None:
        log.info("%s %s", self.address_string(), redact(format % args))

    def send_error(self, code: int, message: str | None = None, explain: str | None = None
                   ) -> None:
        """The stdlib's own errors (bad request line, unsupported method...), as JSON."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self._reply(code, {"error": redact(message or self.responses.get(code, ("",))[0])})
