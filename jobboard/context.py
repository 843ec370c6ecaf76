"""What every board component shares: client, layout, ACL, session, events; retry helpers.

Reads are retried across connection loss until a deadline. A write whose connection dropped has
an unknown outcome: `write` waits for the connection and asks a `verify` function whether it was
applied (by looking for the writer's own token) before trying again, so no write is applied twice.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

from kazoo.client import KazooClient
from kazoo.exceptions import (
    ConnectionLoss,
    NoAuthError,
    OperationTimeoutError,
    RolledBackError,
    RuntimeInconsistency,
    SessionExpiredError,
)
from kazoo.security import ACL

from jobboard.errors import BoardUnavailable, NotAuthorized
from jobboard.events import EventDispatcher
from jobboard.naming import BoardPaths
from jobboard.session import SessionTracker

T = TypeVar("T")
P = ParamSpec("P")
TRANSIENT = (ConnectionLoss, OperationTimeoutError, SessionExpiredError)


@dataclass
class BoardContext:
    """Shared state of one board."""

    client: KazooClient
    paths: BoardPaths
    acl: list[ACL]
    session: SessionTracker
    events: EventDispatcher
    op_timeout: float

    def wait_connected(self, deadline: float) -> None:
        """Block until connected, or BoardUnavailable at `deadline` (a monotonic time)."""
        if not self.session.wait_connected(deadline - time.monotonic()):
            raise BoardUnavailable(
                f"ZooKeeper unreachable for {self.op_timeout:g} s (operation abandoned)"
            )

    def deadline(self) -> float:
        return time.monotonic() + self.op_timeout

    def read(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Call a read-only `function`, retrying across connection loss until the deadline."""
        deadline = self.deadline()
        while True:
            try:
                return function(*args, **kwargs)
            except TRANSIENT:
                self._pause_before_retry(deadline)

    def write(self, attempt: Callable[[], T], verify: Callable[[], T | None]) -> T:
        """Run `attempt()`; after a connection loss, `verify()` returns its result if it was
        applied (None: not applied, try again). Domain errors of either propagate."""
        deadline = self.deadline()
        while True:
            try:
                return attempt()
            except TRANSIENT:
                self._pause_before_retry(deadline)
            while True:
                try:
                    result = verify()
                    break
                except TRANSIENT:
                    self._pause_before_retry(deadline)
            if result is not None:
                return result

    def _pause_before_retry(self, deadline: float) -> None:
        self.wait_connected(deadline)
        if time.monotonic() > deadline:
            raise BoardUnavailable(f"ZooKeeper operation not done within {self.op_timeout:g} s")
        time.sleep(0.01)  # a just-restored connection may drop again: do not spin


def commit(client: KazooClient, build: Callable[[Any], None]) -> list[object]:
    """Build a fresh multi-op with `build(transaction)` and commit it (once: no retry)."""
    transaction = client.transaction()
    build(transaction)
    results: list[object] = transaction.commit()
    return results


def first_failure(results: Sequence[object]) -> tuple[int, Exception] | None:
    """(index, error) of the op that made a multi fail, or None when it succeeded."""
    for index, result in enumerate(results):
        if isinstance(result, Exception) and not isinstance(
            result, (RolledBackError, RuntimeInconsistency)
        ):
            return index, result
    return None


def translate_errors(method: Callable[P, T]) -> Callable[P, T]:
    """Turn kazoo's NoAuthError into NotAuthorized with the operation's name."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return method(*args, **kwargs)
        except NoAuthError:
            raise NotAuthorized(
                f"{method.__name__}: ZooKeeper refused access (ACL); "
                "connect with the board's credentials"
            ) from None

    return wrapper
