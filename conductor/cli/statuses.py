"""The CLI's exit statuses, and which error ends a command with which status and message.

0 success; 1 the operation (or the job waited for) failed; 2 bad usage or `wait` timed out;
3 ZooKeeper or the database could not be reached; 130 interrupted. A JSON error's "kind"
tells apart the two meanings of 2.
"""

from __future__ import annotations

from dataclasses import dataclass

from conductor.config import ConfigError
from jobboard.errors import (
    AclMismatch,
    BoardError,
    BoardUnavailable,
    InvalidInput,
    JobNotFound,
    NotAuthorized,
)
from persistence.errors import PersistenceError, SchemaOutdated, StoreUnavailable

EXIT_OK = 0
EXIT_FAILED = 1  # the operation failed, or the job it waited for failed
EXIT_USAGE = 2  # bad arguments or settings (argparse's own status)
EXIT_TIMEOUT = 2  # `wait` timed out (a JSON error's "kind" tells it apart from a usage error)
EXIT_UNAVAILABLE = 3  # ZooKeeper or the database could not be reached
EXIT_INTERRUPTED = 130

KINDS = {EXIT_FAILED: "failed", EXIT_USAGE: "usage", EXIT_UNAVAILABLE: "unavailable",
         EXIT_INTERRUPTED: "interrupted"}
"""The "kind" of a JSON error for each exit status, unless the error names its own ("timeout")."""


class CommandError(Exception):
    """A command failed in a way the user should read; `status` is the exit status, `kind` the
    JSON error's kind (default: the status's, see KINDS)."""

    def __init__(self, message: str, status: int = EXIT_FAILED, kind: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind


@dataclass(frozen=True)
class Failure:
    """How a command ends on an expected error: the message on stderr and the exit status."""

    message: str
    status: int
    kind: str | None = None  # None: the status's (KINDS)


def failure_for(error: BaseException) -> Failure | None:
    """The Failure an expected error ends a command with; None for any other (a bug)."""
    if isinstance(error, CommandError):
        return Failure(str(error), error.status, error.kind)
    if isinstance(error, ConfigError):
        return Failure(f"configuration: {error}", EXIT_USAGE)
    if isinstance(error, BoardUnavailable | StoreUnavailable):
        return Failure(str(error), EXIT_UNAVAILABLE)
    if isinstance(error, SchemaOutdated):
        return Failure(str(error), EXIT_FAILED)
    if isinstance(error, NotAuthorized):
        return Failure(f"not authorized: {error}", EXIT_FAILED)
    if isinstance(error, AclMismatch):
        return Failure(f"{error}; from the command line: --repair-acls (or "
                       "CONDUCTOR_ZK_REPAIR_ACLS=true) on any command, once", EXIT_FAILED)
    if isinstance(error, InvalidInput | JobNotFound | BoardError | PersistenceError):
        return Failure(str(error), EXIT_FAILED)
    if isinstance(error, KeyboardInterrupt):
        return Failure("interrupted", EXIT_INTERRUPTED)
    return None
