"""The HTTP callback endpoint: `POST /v1/callbacks/<token>` completes a delegation.

Served by `conductor serve --http ADDR` and by `conductor run --http ADDR` on a
`conductor.http` JsonServer (threads, connection cap, request deadline, body limit, JSON
answers; see there). Body: a JSON object with exactly one of "result" (any JSON) or "error"
(a message). Every answer is JSON:

    200 {"status": "completed", "job", "execution", "task", "attempt", "outcome", "job_state"}
    400 bad JSON / bad completion        401 missing or wrong bearer secret
    404 unknown (or malformed) token      405 not POST          409 already completed / task
    408 request not received in time      411 no Content-Length                     finished
    413 body over the limit               500 a bug (logged, token redacted)
    503 database or ZooKeeper unavailable, or too many connections (retry later)

`GET /v1/health` answers 200 while ZooKeeper is connected (503 otherwise), without
authentication. With a secret set, every other request needs `Authorization: Bearer <secret>`
(compared in constant time). Tokens never reach the logs: access log lines show
`/v1/callbacks/zkc_<redacted>`.

At most `max_connections` connections are served at once (more are answered 503), and each
request must arrive within `request_deadline` seconds (else 408); both apply before the bearer
check.
"""

from __future__ import annotations

import logging
import traceback
from typing import Any

from conductor.delegation.callbacks import Callbacks
from conductor.delegation.errors import InvalidCompletion
from conductor.engine.delegated.tokens import redact
from conductor.http.handler import (
    DEFAULT_MAX_BODY,
    DEFAULT_REQUEST_DEADLINE,
    HandlerRules,
    JsonHandler,
)
from conductor.http.server import DEFAULT_MAX_CONNECTIONS, JsonServer
from jobboard.errors import BoardUnavailable
from persistence.errors import DelegationAlreadyCompleted, StoreUnavailable, UnknownDelegation

log = logging.getLogger("conductor.http")

CALLBACK_PREFIX = "/v1/callbacks/"


class CallbackServer(JsonServer):
    """A threaded HTTP server completing delegations through `callbacks`.

    `max_connections`: connections served at once (default 64; more are answered 503 at
    once). `request_deadline`: seconds a client has to send a whole request (default 10;
    then 408 and the connection is closed)."""

    def __init__(self, address: str, callbacks: Callbacks, *, secret: str | None = None,
                 max_body: int = DEFAULT_MAX_BODY,
                 max_connections: int = DEFAULT_MAX_CONNECTIONS,
                 request_deadline: float = DEFAULT_REQUEST_DEADLINE) -> None:
        def health() -> str | None:
            return None if callbacks.board.connected else "zookeeper unavailable"

        rules = HandlerRules(secret=secret or None, max_body=max_body,
                             request_deadline=float(request_deadline), redact=redact,
                             health=health)
        super().__init__(address, CallbackHandler, rules, max_connections=max_connections,
                         name="http-callbacks", attributes={"callbacks": callbacks})

    def start(self) -> CallbackServer:
        if not self.serving:
            super().start()
            log.info("serving task callbacks on %s%s<token>", self.url, CALLBACK_PREFIX)
        return self


class CallbackHandler(JsonHandler):
    """One connection: the callback routes. `callbacks` is bound per server."""

    callbacks: Callbacks
    allowed_methods = "POST"

    def handle_post(self) -> None:
        if not self.authorized():
            return
        if not self.path.startswith(CALLBACK_PREFIX):
            self.reply(404, {"error": "not found"})
            return
        token = self.path[len(CALLBACK_PREFIX):]
        body = self.read_json_body()
        if body is None:
            return
        self._complete(token, body)

    def handle_get(self) -> None:
        if not self.authorized():
            return
        if self.path.startswith(CALLBACK_PREFIX):
            self.not_allowed()
        else:
            self.reply(404, {"error": "not found"})

    def _complete(self, token: str, body: Any) -> None:
        if not isinstance(body, dict) or set(body) not in ({"result"}, {"error"}):
            self.reply(400, {"error": 'the body must be a JSON object with exactly one of '
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
            self.reply(404, {"error": "unknown token"})
        except DelegationAlreadyCompleted as exc:
            self.reply(409, {"error": redact(str(exc)), "kind": type(exc).__name__})
        except InvalidCompletion as exc:
            self.reply(400, {"error": redact(str(exc))})
        except (StoreUnavailable, BoardUnavailable) as exc:
            log.warning("callback not recorded, service unavailable: %s", redact(str(exc)))
            self.reply(503, {"error": "temporarily unavailable; retry later"},
                       {"Retry-After": "5"})
        except Exception:
            log.error("callback failed:\n%s", redact(traceback.format_exc()))
            self.reply(500, {"error": "internal error"})
        else:
            self.reply(200, report.to_json())
