"""Typed errors of the persistence layer, each telling the caller what to do next."""

from __future__ import annotations


class PersistenceError(Exception):
    """Base class of every error raised by a store."""


class Fenced(PersistenceError):
    """The writer's claim epoch is no longer the execution's: another owner took over.

    Nothing was written. The stale writer must stop working on this execution at once.
    """

    def __init__(self, execution_id: str, epoch: int, stored_epoch: int | None) -> None:
        self.execution_id = execution_id
        self.epoch = epoch
        self.stored_epoch = stored_epoch
        super().__init__(
            f"execution {execution_id}: write with epoch {epoch} fenced off "
            f"(stored epoch is {stored_epoch}); another owner has taken over"
        )


class StoreUnavailable(PersistenceError):
    """The database stayed unreachable or busy past the retry budget.

    Transient by nature: release the job and retry later; never dead-letter it for this.
    """


class NotSerializable(PersistenceError, TypeError):
    """A value to be saved is not plain JSON (names what and where, and the offending type)."""


class UnknownExecution(PersistenceError, LookupError):
    """No execution with that id (or job id)."""


class SchemaOutdated(PersistenceError):
    """The database schema is not at the revision this code needs; the message says what to run."""


class UnknownDelegation(PersistenceError, LookupError):
    """No delegation has that completion token."""


class DelegationAlreadyCompleted(PersistenceError):
    """The delegation was completed before; a completion is applied exactly once."""
