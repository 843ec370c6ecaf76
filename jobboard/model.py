"""What the board hands out: jobs with their state, claims, outcomes and board events."""

from __future__ import annotations

import enum
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)


class JobState(str, enum.Enum):
    """Where a job is in its life (see docs/jobboard.md for the state diagram)."""

    UNCLAIMED = "UNCLAIMED"
    CLAIMED = "CLAIMED"
    PARKED = "PARKED"
    COMPLETED = "COMPLETED"
    TRASHED = "TRASHED"


@dataclass(frozen=True)
class Job:
    """A job as read from the board.

    `owner`/`since`/`epoch` are set when CLAIMED, `until` when PARKED, `outcome` when COMPLETED,
    `reason` (and `raw` for garbage) when TRASHED. `document` is None only for trashed garbage.
    """

    id: str
    state: JobState
    document: dict[str, Any] | None
    owner: dict[str, Any] | None = None
    since: float | None = None
    epoch: int | None = None
    until: float | None = None
    outcome: dict[str, Any] | None = None
    reason: str | None = None
    raw: bytes | None = None  # TRASHED garbage: the bytes that could not be read

    @property
    def priority(self) -> int:
        """Priority from the id (valid even for a garbage document)."""
        return 999 - int(self.id[4:7])


ClaimListener = Callable[["Claim", str], None]


class Claim:
    """A job held by this board's session.

    `epoch` (the claim's zxid) only grows from one claim of a job to the next: the conductor fences
    its state writes with it. `lost` is set as soon as the claim is known lost (session LOST, claim
    or job removed by someone else): abandon the job at once. Listeners get (claim, "changed") when
    someone else changed the job document (e.g. a cancel flag: see `document`) and
    (claim, "lost"); they run on the board's event thread.
    """

    def __init__(  # noqa: PLR0917 (one field each)
        self,
        job_id: str,
        document: dict[str, Any],
        epoch: int,
        session: int,
        owner: dict[str, Any],
        version: int,
    ) -> None:
        self.job_id = job_id
        self.document = document
        self.epoch = epoch
        self.session = session
        self.owner = owner
        self.version = version
        self.lost = threading.Event()
        self.lost_reason: str | None = None
        self.closing = False  # set while this board itself removes the claim
        self.ended: str | None = None  # how this board ended it: "completed", "released", ...
        self._listeners: list[ClaimListener] = []
        self._lock = threading.Lock()

    @property
    def token(self) -> str:
        """Unique token of this claim, stored in the claim node (recognizes our own writes)."""
        return str(self.owner["token"])

    def add_listener(self, listener: ClaimListener) -> None:
        """Call `listener(claim, kind)` on "changed" and "lost" (on the board's event thread)."""
        with self._lock:
            self._listeners.append(listener)

    def _notify(self, kind: str) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(self, kind)
            except Exception:
                log.exception("claim listener failed for job %s", self.job_id)

    def __repr__(self) -> str:
        return (
            f"Claim(job_id={self.job_id!r}, epoch={self.epoch}, session={self.session:016x}, "
            f"owner={self.owner.get('id')!r}, lost={self.lost.is_set()})"
        )


@dataclass(frozen=True)
class Outcome:
    """How a job ended: COMPLETED with its outcome object, or TRASHED with the reason."""

    job_id: str
    state: JobState
    outcome: dict[str, Any] | None
    reason: str | None
    document: dict[str, Any] | None
    finished_at: float | None


class BoardEventKind(str, enum.Enum):
    """Kinds of board events delivered to board listeners."""

    SUSPENDED = "SUSPENDED"  # connection lost; the session may still be alive
    RECONNECTED = "RECONNECTED"  # same session back
    LOST = "LOST"  # session expired: every claim of it is lost
    NEW_SESSION = "NEW_SESSION"  # connected with a new session after LOST
    DUPLICATE_MEMBER = "DUPLICATE_MEMBER"  # presence re-registration found another live member
    WATCH_ERROR = "WATCH_ERROR"  # the board could not (re)establish its watches


@dataclass(frozen=True)
class BoardEvent:
    """A connection or board event; `detail` carries the specifics (session id, member, error)."""

    kind: BoardEventKind
    detail: dict[str, Any] = field(default_factory=dict)
