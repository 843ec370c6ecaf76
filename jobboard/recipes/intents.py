"""Durable intents with a live ephemeral twin: what makes a two-system operation on a job
survive the death of the process doing it.

Before its first step, a process records the intent in one multi-op as two nodes of a folder
below the board's root (e.g. BoardPaths.completions):

    <folder>/<job>~<nonce>        persistent: "an operation on <job> is under way"
    <folder>/<job>~<nonce>~live   ephemeral, of the process's session

and after its last step deletes both (another multi-op). If the process dies anywhere in
between, its session ends, the `~live` node vanishes and the persistent one stays: whoever
watches the folder (e.g. with FolderWatch) sees an intent whose doer is gone, finishes the
operation for it, and `discard`s it. The node names carry everything that watcher needs (no
reads): the job id and a random nonce.

The folder and the nodes carry the board's ACL; an existing folder without it is refused
(AclMismatch) on a secured board, unless the board was opened with `repair_acls=True`.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kazoo.exceptions import NodeExistsError, NoNodeError

from jobboard.errors import BoardUnavailable
from jobboard.protocol.context import TRANSIENT, board_errors, first_failure

if TYPE_CHECKING:
    from jobboard.board import JobBoard

log = logging.getLogger(__name__)

LIVE_SUFFIX = "~live"


@dataclass(frozen=True)
class Intent:
    """One operation under way on a job."""

    job_id: str
    nonce: str

    @property
    def name(self) -> str:
        return f"{self.job_id}~{self.nonce}"


def parse_intent(name: str) -> tuple[Intent, bool] | None:
    """(intent, is_live_node) for a node name of an intents folder, else None."""
    live = name.endswith(LIVE_SUFFIX)
    base = name[: -len(LIVE_SUFFIX)] if live else name
    job_id, sep, nonce = base.partition("~")
    if not sep or not job_id or not nonce or "~" in nonce:
        return None
    return Intent(job_id, nonce), live


class Intents:
    """Opens and closes intents in `folder` on one board's client (thread-safe)."""

    def __init__(self, board: JobBoard, folder: str, op_timeout: float = 30.0) -> None:
        self.board = board
        self.client = board.client
        self.folder = folder
        self.op_timeout = op_timeout
        self._ready = False
        self._lock = threading.Lock()
        self._unfinished: list[Intent] = []  # hand-overs that could not reach ZooKeeper

    def check_folder(self) -> None:
        """Create the folder with the board's ACL, or check (with repair_acls, repair) an
        existing one's: AclMismatch, NotAuthorized, BoardUnavailable."""
        self.board.ensure_folder(self.folder)  # retried by the board
        self._ready = True

    def open(self, job_id: str) -> Intent:
        """Record that an operation on `job_id` is under way (BoardUnavailable if ZooKeeper
        cannot be reached: then the operation must not begin either)."""
        self._retry_unfinished()
        intent = Intent(job_id, secrets.token_hex(8))
        if not self._ready:
            self.check_folder()
        live, pending = self._paths(intent)

        def create() -> None:
            transaction = self.client.transaction()
            transaction.create(live, b"", acl=self.board.acl, ephemeral=True)
            transaction.create(pending, b"", acl=self.board.acl)
            results = transaction.commit()
            if isinstance(results[0], NodeExistsError):
                return  # our own multi, applied before its reply was lost (the nonce is new)
            failure = first_failure(results)
            if failure is not None:
                raise failure[1]

        self._run(create, f"record an intent on job {job_id}")
        return intent

    def close(self, intent: Intent) -> None:
        """The operation is fully done (or was refused): remove its intent."""
        live, pending = self._paths(intent)

        def delete() -> None:
            transaction = self.client.transaction()
            transaction.delete(pending)
            transaction.delete(live)
            results = transaction.commit()
            if any(isinstance(r, Exception) for r in results):
                # One of them is gone already (e.g. a new session dropped the live node): remove
                # what is left, one by one.
                for path in (pending, live):
                    with contextlib.suppress(NoNodeError):
                        self.client.delete(path)

        try:
            self._run(delete, f"finish the intent on job {intent.job_id}")
        except BoardUnavailable as exc:
            # Left in place, the intent only makes its watcher finish the operation once more.
            log.warning("could not remove an intent on job %s from %s: %s", intent.job_id,
                        self.folder, exc)

    def hand_over(self, intent: Intent) -> None:
        """Leave the rest of the operation to the folder's watcher: remove only the `~live`
        node (as if this process had died). Kept and retried later if ZooKeeper cannot be
        reached now; at worst the node goes with this process's session."""
        live, _ = self._paths(intent)

        def delete_live() -> None:
            with contextlib.suppress(NoNodeError):
                self.client.delete(live)

        try:
            self._run(delete_live, f"hand the intent on job {intent.job_id} over")
        except BoardUnavailable:
            with self._lock:
                self._unfinished.append(intent)

    def discard(self, intent: Intent) -> None:
        """Remove the durable node of an intent whose doer is gone, once its operation was
        finished for it (a node already gone is fine). BoardError on ZooKeeper trouble."""
        _, pending = self._paths(intent)
        with board_errors(f"remove the intent on job {intent.job_id}"), \
                contextlib.suppress(NoNodeError):
            self.client.delete(pending)

    def _retry_unfinished(self) -> None:
        with self._lock:
            unfinished, self._unfinished = self._unfinished, []
        for intent in unfinished:
            self.hand_over(intent)

    def _paths(self, intent: Intent) -> tuple[str, str]:
        pending = f"{self.folder}/{intent.name}"
        return pending + LIVE_SUFFIX, pending

    def _run(self, operation: Callable[[], Any], what: str) -> None:
        """Run an idempotent ZooKeeper operation, retrying across connection loss until
        `op_timeout`; then BoardUnavailable. Other ZooKeeper errors: BoardError."""
        deadline = time.monotonic() + self.op_timeout
        delay = 0.05
        with board_errors(what):
            while True:
                try:
                    operation()
                    return
                except TRANSIENT as exc:
                    if time.monotonic() + delay > deadline:
                        raise BoardUnavailable(
                            f"ZooKeeper unavailable for {self.op_timeout:g} s: could not {what} "
                            f"({type(exc).__name__})") from None
                time.sleep(delay)  # waiting for the connection to come back
                delay = min(delay * 2, 1.0)
