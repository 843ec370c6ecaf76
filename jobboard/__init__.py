"""The job board in ZooKeeper: post, claim, release, park, complete, trash, watch; presence.

Knows nothing of SQL; never imports `conductor` or `persistence`. Producers need only this package.

Entry points: `JobBoard.connect(hosts, root, credentials=..., tls=...)` (or `JobBoard(client)`),
the `Claim` a conductor holds, the errors in `jobboard.errors`, the recipes in `jobboard.recipes`
for components built on a board, and `jobboard.testing.zkserver` to start real ZooKeeper servers
for tests and development. Inside: `jobboard.protocol` (the board's protocol, one module per
concern) and `jobboard.zk` (kazoo extensions). See docs/jobboard.md.
"""

from jobboard.board import JobBoard
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
from jobboard.zk.connect import TLSOptions, connect, digest_acl

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
