"""The contract every execution store keeps (SQL and in-memory alike).

Fencing is the heart of it: an execution has an epoch (the fencing token of the claim that owns
it). `take_over` raises it; every later write names the writer's epoch and is applied, in one
transaction, only if that epoch is still the stored one. A stale owner's write changes nothing and
raises `Fenced`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from persistence.records import (
    AtomRecord,
    DelegationRecord,
    ExecutionChange,
    ExecutionRecord,
    ExecutionState,
    JSONValue,
    NewDelegation,
    Ownership,
)


class ExecutionStore(Protocol):
    """Saved executions, their atoms, owners and delegations."""

    def create_execution(
        self,
        job_id: str,
        flow_name: str,
        flow_version: str,
        inputs: dict[str, JSONValue],
    ) -> ExecutionRecord:
        """Create the job's execution (state PENDING, epoch 0), or return the one it already has.

        Idempotent per job id. Raises ValueError if the existing execution runs another flow, and
        NotSerializable if `inputs` is not JSON.
        """
        ...

    def take_over(self, execution_id: str, epoch: int, owner: str) -> ExecutionRecord:
        """Make `owner` (holding a claim with fencing `epoch`) the execution's owner.

        One conditional update: succeeds if `epoch` is greater than the stored one, or equal to it
        with the same owner (a retried take-over by the same claim). Records the ownership in the
        history. Returns the execution with its atoms. Raises Fenced otherwise, UnknownExecution
        if there is no such execution.
        """
        ...

    def open_execution(
        self,
        job_id: str,
        flow_name: str,
        flow_version: str,
        inputs: dict[str, JSONValue],
        *,
        epoch: int,
        owner: str,
    ) -> ExecutionRecord:
        """create_execution then take_over, in ONE transaction: what a conductor does when it
        claims a job (one commit instead of two). Same errors as the two; the record returned
        is the execution with its atoms, now owned by `owner` with `epoch`."""
        ...

    def save(
        self,
        execution_id: str,
        epoch: int,
        atoms: Sequence[AtomRecord] = (),
        execution: ExecutionChange | None = None,
        delegations: Sequence[NewDelegation] = (),
    ) -> None:
        """Write atom rows (whole, keyed by name), an execution state change and new delegations
        in one transaction, only if `epoch` is still the stored epoch.

        All or nothing: on Fenced, NotSerializable or StoreUnavailable nothing is written.
        A final execution state sets finished_at. Saving a delegation that is already saved
        (same token hash, execution, atom and attempt: a retried save) is a no-op; a token hash
        that belongs to another delegation raises ValueError.
        """
        ...

    def load(self, execution_id: str) -> ExecutionRecord:
        """The execution with its atoms (an unfenced read). Raises UnknownExecution."""
        ...

    def find_by_job(self, job_id: str) -> ExecutionRecord | None:
        """The job's execution with its atoms, or None."""
        ...

    def owners(self, execution_id: str) -> list[Ownership]:
        """Every take-over of the execution, oldest first."""
        ...

    def history(
        self,
        *,
        limit: int = 50,
        flow_name: str | None = None,
        states: Iterable[ExecutionState] | None = None,
    ) -> list[ExecutionRecord]:
        """Executions newest first (by updated_at), without atoms.

        updated_at is the time of the execution's last own change: creation, take-over, or a
        save with an ExecutionChange. Atom-only saves leave it alone (they are the hot path;
        atoms carry their own started_at/finished_at).
        """
        ...

    def collect_garbage(self, older_than: float) -> int:
        """Delete finished executions (with their atoms, owners and delegations) whose
        finished_at is more than `older_than` seconds ago. Returns how many were deleted."""
        ...

    def delegation(self, token_hash: str) -> DelegationRecord:
        """The delegation with that token hash. Raises UnknownDelegation."""
        ...

    def delegations(self, execution_id: str) -> list[DelegationRecord]:
        """The execution's delegations, oldest first."""
        ...

    def complete_delegation(self, token_hash: str, outcome: JSONValue) -> DelegationRecord:
        """Record a delegation's outcome exactly once (compare-and-set on completed_at).

        Raises UnknownDelegation, DelegationAlreadyCompleted, or NotSerializable.
        """
        ...

    def close(self) -> None:
        """Release connections."""
        ...
