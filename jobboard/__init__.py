"""The job board in ZooKeeper: post, claim, release, park, complete, trash, watch; presence.

Knows nothing of SQL; never imports `conductor` or `persistence`. Producers need only this package.

Entry points: `JobBoard.connect(hosts, root, credentials=..., tls=...)` (or `JobBoard(client)`),
the `Claim` a conductor holds, the errors in `jobboard.errors`, and `jobboard.zkserver` to start
real ZooKeeper servers for tests and development. See docs/jobboard.md.
"""

from jobboard.board import JobBoard
from jobboard.connect import TLSOptions, connect, digest_acl
from jobboard.errors import (
    AclMismatch,
    AlreadyClaimed,
    BoardError,
    BoardUnavailable,
    ClaimConflict,
    ClaimLost,
    DuplicateMember,
    InvalidInput,
    InvalidJob,
    JobNotFound,
    NotAuthorized,
    WaitTimeout,
    ZooKeeperTooOld,
)
from jobboard.model import BoardEvent, BoardEventKind, Claim, Job, JobState, Outcome

__all__ = [
    "AclMismatch",
    "AlreadyClaimed",
    "BoardError",
    "BoardEvent",
    "BoardEventKind",
    "BoardUnavailable",
    "Claim",
    "ClaimConflict",
    "ClaimLost",
    "DuplicateMember",
    "InvalidInput",
    "InvalidJob",
    "Job",
    "JobBoard",
    "JobNotFound",
    "JobState",
    "NotAuthorized",
    "Outcome",
    "TLSOptions",
    "WaitTimeout",
    "ZooKeeperTooOld",
    "connect",
    "digest_acl",
]
