"""Errors raised by the job board; every message names the job, member or field concerned."""

from __future__ import annotations

from typing import Any


class BoardError(Exception):
    """Base class of every job board error."""


class ZooKeeperTooOld(BoardError):
    """The server lacks a feature the board needs (persistent watches: ZooKeeper 3.6+)."""


class NotAuthorized(BoardError):
    """ZooKeeper refused the operation for lack of credentials (digest auth / ACL)."""


class AclMismatch(BoardError):
    """An existing node the board uses lacks the board's ACL (e.g. created before auth was
    turned on): the board refuses to start rather than leave it open. Digest ids are redacted."""

    def __init__(self, path: str, found: str, expected: str, detail: str = "") -> None:
        super().__init__(
            f"{path} has the ACL [{found}], not the board's [{expected}], so clients without "
            "the board's credentials may read or change it; repair it once with "
            "JobBoard.connect(..., repair_acls=True) (sets the board's ACL on it and every node "
            "below it; needs ADMIN permission on them), or with zkCli's setAcl -R"
            + (f" ({detail})" if detail else "")
        )
        self.path = path


class BoardUnavailable(BoardError):
    """ZooKeeper could not be reached (or the session kept changing) within the deadline."""


class InvalidInput(BoardError, ValueError):
    """An argument given to the board is invalid (name, priority, inputs, outcome, updates...)."""


class InvalidJob(BoardError):
    """A stored job document is unreadable; it has been moved to the trash with the reason."""

    def __init__(self, job_id: str, reason: str) -> None:
        super().__init__(f"job {job_id} is invalid and was moved to the trash: {reason}")
        self.job_id = job_id
        self.reason = reason


class JobNotFound(BoardError, LookupError):
    """No such job where the operation needs it (it may be parked, finished or never posted)."""

    def __init__(self, job_id: str, detail: str = "") -> None:
        message = f"job {job_id} not found" + (f": {detail}" if detail else "")
        super().__init__(message)
        self.job_id = job_id


class AlreadyClaimed(BoardError):
    """The job is claimed by another owner (named in the message and in `owner`)."""

    def __init__(self, job_id: str, owner: dict[str, Any] | None) -> None:
        if owner:
            who = (
                f"{owner.get('id')!s} (host {owner.get('host')!s}, pid {owner.get('pid')!s}, "
                f"session {owner.get('session')!s})"
            )
        else:
            who = "an unknown owner"
        super().__init__(f"job {job_id} is already claimed by {who}")
        self.job_id = job_id
        self.owner = owner or {}


class ClaimConflict(BoardError):
    """The job document kept changing while claiming it; try again later."""


class ClaimLost(BoardError):
    """The claim is no longer this session's (session expired, claim or job removed).

    Nothing was changed by the operation that raised it.
    """

    def __init__(self, job_id: str, reason: str) -> None:
        super().__init__(f"claim on job {job_id} is lost: {reason}; nothing was changed")
        self.job_id = job_id
        self.reason = reason


class DuplicateMember(BoardError):
    """A live presence node of another session already uses this member id."""

    def __init__(self, kind: str, member_id: str, session: int) -> None:
        super().__init__(
            f"{kind} member {member_id!r} is already registered by live session {session:016x}"
        )
        self.kind = kind
        self.member_id = member_id
        self.session = session


class WaitTimeout(BoardError, TimeoutError):
    """No outcome for the job within the timeout."""

    def __init__(self, job_id: str, timeout: float) -> None:
        super().__init__(f"no outcome for job {job_id} within {timeout:g} s")
        self.job_id = job_id
