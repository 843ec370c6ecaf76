"""Names on the board: job ids (which sort the backlog), safe names, and the ZooKeeper layout.

A job id is `job-<999-priority:03d>-<ms since epoch:013d>-<8 hex>`, chosen by the producer so that a
post can be retried safely and an idempotency key can name its job in the same multi-op. Sorting
ids sorts the backlog: priority (higher first), then FIFO by creation time (across producers this
relies on synchronized clocks).
"""

from __future__ import annotations

import re
import secrets
import threading
import time

from jobboard.errors import InvalidInput

MAX_PRIORITY = 999
MAX_NAME_LENGTH = 200
JOB_ID_PATTERN = re.compile(r"^job-(\d{3})-(\d{13})-([0-9a-f]{8})$")
SAFE_NAME_PATTERN = re.compile(r"^[A-Za-z0-9_:@+=-][A-Za-z0-9._:@+=-]*$")
AREAS = ("jobs", "claims", "holds", "parked", "trash", "outcomes", "keys", "sessions")


class JobIdGenerator:
    """Makes job ids whose time part is strictly increasing within this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_ms = 0

    def new_id(self, priority: int) -> str:
        with self._lock:
            self._last_ms = max(int(time.time() * 1000), self._last_ms + 1)
            stamp = self._last_ms
        return f"job-{MAX_PRIORITY - priority:03d}-{stamp:013d}-{secrets.token_hex(4)}"


def is_job_id(value: object) -> bool:
    """True when `value` has the job id format."""
    return isinstance(value, str) and JOB_ID_PATTERN.match(value) is not None


def check_job_id(value: object) -> str:
    """`value` if it is a job id, else InvalidInput (keeps arbitrary paths out of the layout)."""
    if not is_job_id(value):
        raise InvalidInput(
            f"invalid job id {value!r}: expected job-<3 digits>-<13 digits>-<8 hex digits>"
        )
    return str(value)


def priority_band(job_id: str) -> str:
    """The part of a job id that orders by priority (`job-NNN`)."""
    return job_id[:7]


def check_priority(priority: object) -> int:
    """A priority is an int from 0 to 999 (higher runs first); bools are refused."""
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise InvalidInput(
            f"priority must be an int from 0 to {MAX_PRIORITY}, got {type(priority).__name__}"
        )
    if not 0 <= priority <= MAX_PRIORITY:
        raise InvalidInput(f"priority must be from 0 to {MAX_PRIORITY}, got {priority}")
    return priority


def check_name(what: str, value: object) -> str:
    """A non-empty name of at most 200 characters from [A-Za-z0-9._:@+=-], not starting with '.'."""
    if not isinstance(value, str):
        raise InvalidInput(f"{what} must be a string, got {type(value).__name__}")
    if not value:
        raise InvalidInput(f"{what} must not be empty")
    if len(value) > MAX_NAME_LENGTH:
        raise InvalidInput(f"{what} has {len(value)} characters; the limit is {MAX_NAME_LENGTH}")
    if not SAFE_NAME_PATTERN.match(value):
        raise InvalidInput(
            f"{what} {value!r} has characters outside [A-Za-z0-9._:@+=-] "
            "(or starts with '.'); '/' and spaces are not allowed"
        )
    return value


class BoardPaths:
    """Where everything lives under the board's root (default /conductor)."""

    def __init__(self, root: str = "/conductor") -> None:
        if not root.startswith("/") or root.endswith("/") or "//" in root:
            raise InvalidInput(f"board root must be an absolute path like /conductor, got {root!r}")
        self.root = root
        self.jobs = f"{root}/jobs"
        self.claims = f"{root}/claims"
        self.holds = f"{root}/holds"
        self.parked = f"{root}/parked"
        self.trash = f"{root}/trash"
        self.outcomes = f"{root}/outcomes"
        self.keys = f"{root}/keys"
        self.sessions = f"{root}/sessions"
        self.keeper = f"{root}/keeper"
        self.completions = f"{root}/completions"

    def areas(self) -> list[str]:
        """Folders the board creates at start (`keeper` and `completions` are made by the
        recipes that use them: jobboard.recipes)."""
        return [f"{self.root}/{area}" for area in AREAS]

    def job(self, job_id: str) -> str:
        return f"{self.jobs}/{job_id}"

    def claim(self, job_id: str) -> str:
        return f"{self.claims}/{job_id}"

    def hold(self, job_id: str, token: str) -> str:
        """The ephemeral marker of one claim (its token): present while that very claim lasts."""
        return f"{self.holds}/{job_id}.{token}"

    def parked_job(self, job_id: str) -> str:
        return f"{self.parked}/{job_id}"

    def trashed(self, job_id: str) -> str:
        return f"{self.trash}/{job_id}"

    def outcome(self, job_id: str) -> str:
        return f"{self.outcomes}/{job_id}"

    def key(self, key: str) -> str:
        return f"{self.keys}/{key}"

    def session(self, session_id: int) -> str:
        return f"{self.sessions}/{session_id:016x}"

    def members(self, kind: str) -> str:
        if kind in AREAS:
            raise InvalidInput(f"member kind {kind!r} is a board area name; use e.g. 'conductors'")
        return f"{self.root}/{check_name('member kind', kind)}"

    def member(self, kind: str, member_id: str) -> str:
        return f"{self.members(kind)}/{check_name('member id', member_id)}"
