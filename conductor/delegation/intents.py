"""Completion intents: what makes a completion survive the death of the process recording it.

Completing is two writes in two systems: (a) the outcome into the delegation row (SQL), then
(b) waking or notifying the job (ZooKeeper). Before (a) the completer creates, in one multi-op,

    <root>/completions/<job>~<nonce>        persistent: "a completion of <job> is under way"
    <root>/completions/<job>~<nonce>~live   ephemeral, of the completer's session

and after (b) deletes both (another multi-op). If the completer dies anywhere in between, its
session ends, the `~live` node vanishes and the persistent one stays: the elected deadline
keeper (conductor.delegation.keeper), which watches this folder, sees an intent whose completer
is gone and does (b) itself, then deletes it. Doing (b) for a completion that never reached the
database is harmless: the woken job is claimed, finds nothing new, and parks again.

The node names carry everything the keeper needs (no reads): the job id and a random nonce.
They and the folder carry the board's ACL; an existing folder without it is refused
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
from typing import Any, TypeVar

from kazoo.exceptions import (
    ConnectionLoss,
    NodeExistsError,
    NoNodeError,
    OperationTimeoutError,
    SessionExpiredError,
)

from jobboard.board import JobBoard
from jobboard.context import first_failure
from jobboard.errors import BoardUnavailable

log = logging.getLogger("conductor.delegation")

AREA = "completions"
LIVE_SUFFIX = "~live"
_TRANSIENT = (ConnectionLoss, OperationTimeoutError, SessionExpiredError)
T = TypeVar("T")


@dataclass(frozen=True)
class Intent:
    """One completion under way."""

    job_id: str
    nonce: str

    @property
    def name(self) -> str:
        return f"{self.job_id}~{self.nonce}"


def parse(name: str) -> tuple[Intent, bool] | None:
    """(intent, is_live_node) for a node name of the completions folder, else None."""
    live = name.endswith(LIVE_SUFFIX)
    base = name[: -len(LIVE_SUFFIX)] if live else name
    job_id, sep, nonce = base.partition("~")
    if not sep or not job_id or not nonce or "~" in nonce:
        return None
    return Intent(job_id, nonce), live


def folder(board: JobBoard) -> str:
    return f"{board.paths.root}/{AREA}"


class CompletionIntents:
    """Creates and removes completion intents on one board's client (thread-safe)."""

    def __init__(self, board: JobBoard, op_timeout: float = 30.0) -> None:
        self.board = board
        self.client = board.client
        self.folder = folder(board)
        self.op_timeout = op_timeout
        self._ready = False
        self._lock = threading.Lock()
        self._unfinished: list[Intent] = []  # hand-overs that could not reach ZooKeeper

    def open(self, job_id: str) -> Intent:
        """Record that a completion of `job_id` is under way (BoardUnavailable if ZooKeeper
        cannot be reached: then nothing may be recorded in the database either)."""
        self._retry_unfinished()
        intent = Intent(job_id, secrets.token_hex(8))
        self._ensure_folder()
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

        self._run(create, f"record a completion of job {job_id}")
        return intent

    def close(self, intent: Intent) -> None:
        """The completion is fully done (or was refused): remove its intent."""
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
            self._run(delete, f"finish the completion of job {intent.job_id}")
        except BoardUnavailable as exc:
            # Left in place, the intent only makes the keeper nudge the job once more.
            log.warning("could not remove a completion intent of job %s: %s", intent.job_id, exc)

    def hand_over(self, intent: Intent) -> None:
        """Leave the rest of this completion to the keeper: remove only the `~live` node (as if
        this process had died). Kept and retried later if ZooKeeper cannot be reached now; at
        worst the node goes with this process's session."""
        live, _ = self._paths(intent)

        def delete_live() -> None:
            with contextlib.suppress(NoNodeError):
                self.client.delete(live)

        try:
            self._run(delete_live, f"hand the completion of job {intent.job_id} over")
        except BoardUnavailable:
            with self._lock:
                self._unfinished.append(intent)

    def _retry_unfinished(self) -> None:
        with self._lock:
            unfinished, self._unfinished = self._unfinished, []
        for intent in unfinished:
            self.hand_over(intent)

    def _paths(self, intent: Intent) -> tuple[str, str]:
        pending = f"{self.folder}/{intent.name}"
        return pending + LIVE_SUFFIX, pending

    def _ensure_folder(self) -> None:
        if self._ready:
            return
        self.board.ensure_folder(self.folder)  # retried by the board; AclMismatch if not ours
        self._ready = True

    def _run(self, operation: Callable[[], Any], what: str) -> None:
        """Run an idempotent ZooKeeper operation, retrying across connection loss until
        `op_timeout`; then BoardUnavailable."""
        deadline = time.monotonic() + self.op_timeout
        delay = 0.05
        while True:
            try:
                operation()
                return
            except _TRANSIENT as exc:
                if time.monotonic() + delay > deadline:
                    raise BoardUnavailable(
                        f"ZooKeeper unavailable for {self.op_timeout:g} s: could not {what} "
                        f"({type(exc).__name__})") from None
                time.sleep(delay)  # waiting for the connection to come back
                delay = min(delay * 2, 1.0)
