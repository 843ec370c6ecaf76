"""An in-memory ExecutionStore: same contract and fencing as the SQL stores, nothing durable.

For tests of pure engine logic, benchmarks of the engine itself, and one-off local runs. Values
are stored as JSON-faithful copies, so a flow that runs here would be accepted by a SQL store.
"""

from __future__ import annotations

import copy
import itertools
import threading
import time
import uuid
from collections.abc import Iterable, Sequence

from persistence import jsonvalue
from persistence.errors import (
    DelegationAlreadyCompleted,
    Fenced,
    UnknownDelegation,
    UnknownExecution,
)
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


class MemoryStore:
    """ExecutionStore kept in this process's memory, guarded by one lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open_lock = threading.Lock()
        self._executions: dict[str, ExecutionRecord] = {}
        self._by_job: dict[str, str] = {}
        self._owners: dict[str, list[Ownership]] = {}
        self._delegations: dict[str, DelegationRecord] = {}
        self._delegation_ids = itertools.count(1)

    def create_execution(
        self,
        job_id: str,
        flow_name: str,
        flow_version: str,
        inputs: dict[str, JSONValue],
    ) -> ExecutionRecord:
        inputs = jsonvalue.check(inputs, what=f"inputs of job {job_id}")
        with self._lock:
            existing = self._by_job.get(job_id)
            if existing is not None:
                record = self._executions[existing]
                if record.flow_name != flow_name:
                    raise ValueError(
                        f"job {job_id} already has an execution of flow {record.flow_name!r}, "
                        f"not {flow_name!r}"
                    )
                return copy.deepcopy(record)
            now = time.time()
            record = ExecutionRecord(
                id=str(uuid.uuid4()),
                job_id=job_id,
                flow_name=flow_name,
                flow_version=flow_version,
                inputs=inputs,
                state=ExecutionState.PENDING,
                epoch=0,
                owner=None,
                created_at=now,
                updated_at=now,
            )
            self._executions[record.id] = record
            self._by_job[job_id] = record.id
            self._owners[record.id] = []
            return copy.deepcopy(record)

    def take_over(self, execution_id: str, epoch: int, owner: str) -> ExecutionRecord:
        with self._lock:
            record = self._get(execution_id)
            same_claim = epoch == record.epoch and owner == record.owner
            if epoch <= record.epoch and not same_claim:
                raise Fenced(execution_id, epoch, record.epoch)
            if not same_claim:
                now = time.time()
                record.epoch = epoch
                record.owner = owner
                record.updated_at = now
                self._owners[execution_id].append(Ownership(epoch, owner, now))
            return copy.deepcopy(record)

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
        with self._open_lock:  # one "transaction": nobody takes over in between
            created = self.create_execution(job_id, flow_name, flow_version, inputs)
            return self.take_over(created.id, epoch, owner)

    def save(
        self,
        execution_id: str,
        epoch: int,
        atoms: Sequence[AtomRecord] = (),
        execution: ExecutionChange | None = None,
        delegations: Sequence[NewDelegation] = (),
    ) -> None:
        # Validate (and copy) everything before touching state: all or nothing.
        new_atoms = [self._checked_atom(execution_id, atom) for atom in atoms]
        change = None
        if execution is not None:
            change = ExecutionChange(
                execution.state,
                jsonvalue.check(execution.result, what=f"result of execution {execution_id}"),
                execution.failure,
            )
        with self._lock:
            record = self._get(execution_id)
            if record.epoch != epoch:
                raise Fenced(execution_id, epoch, record.epoch)
            fresh = [new for new in delegations if not self._saved_before(execution_id, new)]
            now = time.time()
            for atom in new_atoms:
                record.atoms[atom.name] = atom
            if change is not None:
                record.state = change.state
                record.result = change.result
                record.failure = change.failure
                record.updated_at = now
                if change.state.finished:
                    record.finished_at = now
            for new in fresh:
                self._delegations[new.token_hash] = DelegationRecord(
                    id=next(self._delegation_ids),
                    execution_id=execution_id,
                    job_id=record.job_id,
                    atom_name=new.atom_name,
                    attempt=new.attempt,
                    token_hash=new.token_hash,
                    deadline=new.deadline,
                    created_at=now,
                )

    def load(self, execution_id: str) -> ExecutionRecord:
        with self._lock:
            return copy.deepcopy(self._get(execution_id))

    def find_by_job(self, job_id: str) -> ExecutionRecord | None:
        with self._lock:
            execution_id = self._by_job.get(job_id)
            if execution_id is None:
                return None
            return copy.deepcopy(self._executions[execution_id])

    def owners(self, execution_id: str) -> list[Ownership]:
        with self._lock:
            self._get(execution_id)
            return list(self._owners[execution_id])

    def history(
        self,
        *,
        limit: int = 50,
        flow_name: str | None = None,
        states: Iterable[ExecutionState] | None = None,
    ) -> list[ExecutionRecord]:
        wanted = set(states) if states is not None else None
        with self._lock:
            found = [
                record
                for record in self._executions.values()
                if (flow_name is None or record.flow_name == flow_name)
                and (wanted is None or record.state in wanted)
            ]
            found.sort(key=lambda record: record.updated_at, reverse=True)
            out = []
            for record in found[:limit]:
                brief = copy.copy(record)
                brief.atoms = {}
                out.append(copy.deepcopy(brief))
            return out

    def collect_garbage(self, older_than: float) -> int:
        cutoff = time.time() - older_than
        with self._lock:
            doomed = [
                record.id
                for record in self._executions.values()
                if record.finished_at is not None and record.finished_at < cutoff
            ]
            for execution_id in doomed:
                record = self._executions.pop(execution_id)
                del self._by_job[record.job_id]
                del self._owners[execution_id]
            gone = set(doomed)
            for token_hash in [
                key for key, delegation in self._delegations.items()
                if delegation.execution_id in gone
            ]:
                del self._delegations[token_hash]
            return len(doomed)

    def delegation(self, token_hash: str) -> DelegationRecord:
        with self._lock:
            found = self._delegations.get(token_hash)
            if found is None:
                raise UnknownDelegation("no delegation has that token")
            return copy.deepcopy(found)

    def delegations(self, execution_id: str) -> list[DelegationRecord]:
        with self._lock:
            found = [d for d in self._delegations.values() if d.execution_id == execution_id]
            return copy.deepcopy(sorted(found, key=lambda d: d.id))

    def complete_delegation(self, token_hash: str, outcome: JSONValue) -> DelegationRecord:
        outcome = jsonvalue.check(outcome, what="delegation outcome")
        with self._lock:
            found = self._delegations.get(token_hash)
            if found is None:
                raise UnknownDelegation("no delegation has that token")
            if found.completed_at is not None:
                raise DelegationAlreadyCompleted(
                    f"delegation of {found.atom_name!r} in job {found.job_id} was already completed"
                )
            found.completed_at = time.time()
            found.outcome = outcome
            return copy.deepcopy(found)

    def close(self) -> None:
        pass

    def _get(self, execution_id: str) -> ExecutionRecord:
        try:
            return self._executions[execution_id]
        except KeyError:
            raise UnknownExecution(f"no execution {execution_id}") from None

    def _saved_before(self, execution_id: str, new: NewDelegation) -> bool:
        """Whether this very delegation is already saved (a retried save); raises ValueError if
        its token hash belongs to another one."""
        found = self._delegations.get(new.token_hash)
        if found is None:
            return False
        if (found.execution_id, found.atom_name, found.attempt) != (
            execution_id, new.atom_name, new.attempt
        ):
            raise ValueError(
                f"delegation of {new.atom_name!r} (attempt {new.attempt}): its token hash is "
                "already used by another delegation; nothing was saved"
            )
        return True

    @staticmethod
    def _checked_atom(execution_id: str, atom: AtomRecord) -> AtomRecord:
        saved = copy.copy(atom)
        saved.result = jsonvalue.check(
            atom.result, what=f"result of task {atom.name!r} (execution {execution_id})"
        )
        return saved
