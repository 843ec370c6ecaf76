"""What every board component shares: client, layout, ACL, session, events; retry helpers.

Reads are retried across connection loss until a deadline. A write whose connection dropped has
an unknown outcome: `write` waits for the connection and asks a `verify` function whether it was
applied (by looking for the writer's own token) before trying again, so no write is applied twice.

`ensure_folder` creates a folder with the board's ACL or, on a secured board (an ACL other than
open), checks that an existing one carries it: AclMismatch otherwise, unless the board was opened
with `repair_acls=True`, which sets the board's ACL on the folder and every node below it.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

from kazoo.client import KazooClient
from kazoo.exceptions import (
    ConnectionLoss,
    KazooException,
    NoAuthError,
    NodeExistsError,
    NoNodeError,
    OperationTimeoutError,
    RolledBackError,
    RuntimeInconsistency,
    SessionExpiredError,
)
from kazoo.security import ACL, OPEN_ACL_UNSAFE, Id, make_digest_acl_credential

from jobboard.errors import AclMismatch, BoardError, BoardUnavailable, NotAuthorized
from jobboard.protocol.events import EventDispatcher
from jobboard.protocol.naming import BoardPaths
from jobboard.zk.connect import redact_digest_ids
from jobboard.zk.session import SessionTracker

T = TypeVar("T")
P = ParamSpec("P")
TRANSIENT = (ConnectionLoss, OperationTimeoutError, SessionExpiredError)
"""ZooKeeper errors after which an operation may be retried once connected again (its effect,
for a write, unknown): the one set every part of the board (and its recipes) retries on."""
log = logging.getLogger("jobboard")
_PERMS = "rwcda"  # READ=1, WRITE=2, CREATE=4, DELETE=8, ADMIN=16


def _acl_key(acl: Sequence[ACL]) -> frozenset[tuple[int, str, str]]:
    return frozenset((entry.perms, entry.id.scheme, entry.id.id) for entry in acl)


def same_acl(a: Sequence[ACL], b: Sequence[ACL]) -> bool:
    """Equal ACLs, whatever their order."""
    return _acl_key(a) == _acl_key(b)


def describe_acl(acl: Sequence[ACL]) -> str:
    """A readable ACL with the digest hashes redacted (safe for errors and logs)."""
    parts = []
    for entry in acl:
        perms = "".join(p for i, p in enumerate(_PERMS) if entry.perms & (1 << i)) or "none"
        ident = redact_digest_ids(f"scheme='{entry.id.scheme}', id='{entry.id.id}'")
        ident = ident.split("id='", 1)[1].rstrip("'")
        parts.append(f"{entry.id.scheme}:{ident}:{perms}")
    return ", ".join(parts) or "empty"


def stored_acl(client: KazooClient, acl: Sequence[ACL]) -> list[ACL]:
    """`acl` as ZooKeeper stores it: an `auth` entry becomes one digest entry per digest
    credential the client authenticated with."""
    stored: list[ACL] = []
    for entry in acl:
        if entry.id.scheme != "auth":
            stored.append(entry)
            continue
        for scheme, credential in client.auth_data:
            if scheme == "digest":
                user, _, password = credential.partition(":")
                ident = Id("digest", make_digest_acl_credential(user, password))
                stored.append(ACL(entry.perms, ident))
    return stored


@dataclass
class BoardContext:
    """Shared state of one board."""

    client: KazooClient
    paths: BoardPaths
    acl: list[ACL]
    session: SessionTracker
    events: EventDispatcher
    op_timeout: float
    repair_acls: bool = False

    @property
    def secured(self) -> bool:
        """The board's ACL is not open to everyone: existing folders' ACLs are checked."""
        return not same_acl(self.acl, OPEN_ACL_UNSAFE)

    def ensure_folder(self, path: str) -> None:
        """Create `path` (and missing parents) with the board's ACL; on a secured board, check
        that an existing `path` carries it (see the module docstring)."""
        client = self.client
        if self.read(client.exists, path) is None:
            with contextlib.suppress(NodeExistsError):
                self.read(client.ensure_path, path, self.acl)
        if not self.secured:
            return
        try:
            found, _ = self.read(client.get_acls, path)
        except NoAuthError:
            raise NotAuthorized(
                f"{path}: ZooKeeper refuses to show its ACL to this client: it belongs to other "
                "credentials; connect with the board's credentials or fix its ACL as its owner"
            ) from None
        expected = stored_acl(client, self.acl)
        if same_acl(found, expected):
            return
        if not self.repair_acls:
            raise AclMismatch(path, describe_acl(found), describe_acl(expected))
        self._repair_tree(path, expected)

    def _repair_tree(self, top: str, expected: list[ACL]) -> None:
        """Set the board's ACL on `top` first (so no new open child appears), then on every
        node below it whose ACL differs (a one-off: plain synchronous calls)."""
        client = self.client
        pending = [top]
        while pending:
            path = pending.pop()
            try:
                found, _ = self.read(client.get_acls, path)
                if not same_acl(found, expected):
                    try:
                        self.read(client.set_acls, path, self.acl)
                    except NoAuthError:
                        raise AclMismatch(
                            path, describe_acl(found), describe_acl(expected),
                            "repair_acls failed: this client lacks ADMIN permission on it; use "
                            "zkCli's setAcl as a user that has it (or the super user)",
                        ) from None
                    log.warning("repaired the ACL of %s (was [%s])", path, describe_acl(found))
                pending += [f"{path}/{name}" for name in self.read(client.get_children, path)]
            except NoNodeError:
                continue  # gone meanwhile (e.g. an ephemeral node)

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


@contextlib.contextmanager
def board_errors(what: str) -> Iterator[None]:
    """Raise ZooKeeper errors of the block as board errors saying what could not be done:
    connection trouble as BoardUnavailable, a refusal by ACL as NotAuthorized, anything else as
    BoardError. For recipes, whose callers know nothing of kazoo."""
    try:
        yield
    except TRANSIENT as exc:
        raise BoardUnavailable(
            f"ZooKeeper unavailable: could not {what} ({type(exc).__name__})") from exc
    except NoAuthError:
        raise NotAuthorized(
            f"{what}: ZooKeeper refused access (ACL); connect with the board's credentials"
        ) from None
    except KazooException as exc:
        raise BoardError(f"could not {what}: {exc!r}") from exc
