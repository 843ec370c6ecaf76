"""The HTTP callback endpoint: `POST /v1/callbacks/<token>` completes a delegation.

Served by `conductor serve --http ADDR` and by `conductor run --http ADDR` with the standard
library's ThreadingHTTPServer (one thread per request; the work per request is a few database
and ZooKeeper round trips, so no framework is needed). Body: a JSON object with exactly one of
"result" (any JSON) or "error" (a message). Every answer is JSON:

    200 {"status": "completed", "job", "execution", "task", "attempt", "outcome", "job_state"}
    400 bad JSON / bad completion        401 missing or wrong bearer secret
    404 unknown (or malformed) token      405 not POST          409 already completed / task
    411 no Content-Length                 413 body over the limit                   finished
    503 database or ZooKeeper unavailable (retry later)         500 a bug (logged)

`GET /v1/health` answers 200 while ZooKeeper is connected (503 otherwise), without
authentication. With a secret set, every other request needs `Authorization: Bearer <secret>`
(compared in constant time). Tokens never
reach the logs: access log lines show `/v1/callbacks/zkc_<redacted>`.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from conductor.delegation.callbacks import Callbacks
from conductor.delegation.errors import InvalidCompletion
from conductor.delegation.tokens import redact
from jobboard.errors import BoardUnavailable
from persistence.errors import DelegationAlreadyCompleted, StoreUnavailable, UnknownDelegation

log = logging.getLogger("conductor.http")

CALLBACK_PREFIX = "/v1/callbacks/"
HEALTH_PATH = "/v1/health"
DEFAULT_MAX_BODY = 1024 * 1024
REQUEST_TIMEOUT = 30.0  # seconds a client may take to send its request (slow clients)


def parse_address(address: str) -> tuple[str, int]:
    """HOST:PORT (or :PORT for all interfaces) -> (host, port); ValueError otherwise."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"HTTP address must be HOST:PORT, got {address!r}")
    return host.strip("[]") or "0.0.0.0", int(port)


class CallbackServer:
    """A threaded HTTP server completing delegations through `callbacks`."""

    def __init__(self, address: str, callbacks: Callbacks, *, secret: str | None = None,
                 max_body: int = DEFAULT_MAX_BODY) -> None:
        host, port = parse_address(address)
        if max_body < 1:
            raise ValueError(f"the body limit must be at least 1 byte, got {max_body}")
        handler = type("BoundCallbackHandler", (CallbackHandler,), {
            "callbacks": callbacks, "secret": secret or None, "max_body": max_body})
        self.httpd = ThreadingHTTPServer((host, port), handler)
        self.httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

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


class CallbackHandler(BaseHTTPRequestHandler):
    """One request. Class attributes are bound per server (see CallbackServer)."""

    callbacks: Callbacks
    secret: str | None
    max_body: int
    server_version = "zkconductor"
    timeout = REQUEST_TIMEOUT

    def do_POST(self) -> None:
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

    def do_GET(self) -> None:
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

    def do_PUT(self) -> None:
        self._not_allowed()

    do_DELETE = do_PATCH = do_PUT

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
        try:
            return json.loads(self.rfile.read(length))
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
            log.exception("callback failed")
            self._reply(500, {"error": "internal error"})
        else:
            self._reply(200, report.to_json())

    def _not_allowed(self) -> None:
        self._reply(405, {"error": f"method {self.command} not allowed; use POST"},
                    {"Allow": "POST"})

    def _reply(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None,
               *, close: bool = False) -> None:
        data = json.dumps(body).encode()
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
