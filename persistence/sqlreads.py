"""Reading saved executions back into records: the store's queries, each a fixed number of
statements (no query per atom or per execution)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection, Row, Select, select

from persistence.records import (
    AtomRecord,
    AtomState,
    DelegationRecord,
    ExecutionRecord,
    ExecutionState,
    Failure,
    Intention,
    Ownership,
)
from persistence.schema import atoms, delegations, executions, ownerships

_ATOM_ORDER = (atoms.c.started_at.is_(None), atoms.c.started_at, atoms.c.name)
_DELEGATION_COLUMNS = (*delegations.c, executions.c.job_id)


def execution_by_id(conn: Connection, execution_id: str) -> ExecutionRecord | None:
    """The execution with its atoms, or None."""
    return _with_atoms(conn, select(executions).where(executions.c.id == execution_id))


def execution_by_job(conn: Connection, job_id: str) -> ExecutionRecord | None:
    """The job's execution with its atoms, or None."""
    return _with_atoms(conn, select(executions).where(executions.c.job_id == job_id))


def stored_epoch(conn: Connection, execution_id: str) -> int | None:
    """The execution's epoch, or None if there is no such execution."""
    found = conn.execute(
        select(executions.c.epoch).where(executions.c.id == execution_id)
    ).scalar_one_or_none()
    return None if found is None else int(found)


def owners_of(conn: Connection, execution_id: str) -> list[Ownership] | None:
    """Every take-over of the execution, oldest first; None if there is no such execution."""
    rows = conn.execute(
        select(executions.c.id, ownerships.c.epoch, ownerships.c.owner, ownerships.c.taken_at)
        .select_from(executions.outerjoin(ownerships))
        .where(executions.c.id == execution_id)
        .order_by(ownerships.c.epoch)
    ).all()
    if not rows:
        return None
    return [Ownership(int(r.epoch), r.owner, r.taken_at) for r in rows if r.epoch is not None]


def history(
    conn: Connection,
    *,
    limit: int,
    flow_name: str | None,
    states: Iterable[ExecutionState] | None,
) -> list[ExecutionRecord]:
    """Executions newest first (by updated_at), without atoms."""
    query = select(executions).order_by(executions.c.updated_at.desc(), executions.c.id)
    if flow_name is not None:
        query = query.where(executions.c.flow_name == flow_name)
    if states is not None:
        query = query.where(executions.c.state.in_([ExecutionState(s).value for s in states]))
    return [execution_from_row(row) for row in conn.execute(query.limit(limit))]


def delegation_by_hash(conn: Connection, token_hash: str) -> DelegationRecord | None:
    """The delegation with that token hash, or None."""
    row = conn.execute(
        select(*_DELEGATION_COLUMNS)
        .join_from(delegations, executions)
        .where(delegations.c.token_hash == token_hash)
    ).one_or_none()
    return None if row is None else delegation_from_row(row)


def delegations_of(conn: Connection, execution_id: str) -> list[DelegationRecord]:
    """The execution's delegations, oldest first."""
    rows = conn.execute(
        select(*_DELEGATION_COLUMNS)
        .join_from(delegations, executions)
        .where(delegations.c.execution_id == execution_id)
        .order_by(delegations.c.id)
    )
    return [delegation_from_row(row) for row in rows]


def execution_from_row(row: Row[object]) -> ExecutionRecord:
    """An ExecutionRecord (without atoms) from an executions row."""
    m = row._mapping
    return ExecutionRecord(
        id=m["id"],
        job_id=m["job_id"],
        flow_name=m["flow_name"],
        flow_version=m["flow_version"],
        inputs=m["inputs"],
        state=ExecutionState(m["state"]),
        epoch=int(m["epoch"]),
        owner=m["owner"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
        finished_at=m["finished_at"],
        result=m["result"],
        failure=_failure(m["failure"]),
    )


def atom_from_row(row: Row[object]) -> AtomRecord:
    """An AtomRecord from an atoms row."""
    m = row._mapping
    return AtomRecord(
        name=m["name"],
        kind=m["kind"],
        state=AtomState(m["state"]),
        intention=Intention(m["intention"]),
        attempt=m["attempt"],
        result=m["result"],
        failure=_failure(m["failure"]),
        not_before=m["not_before"],
        started_at=m["started_at"],
        finished_at=m["finished_at"],
    )


def delegation_from_row(row: Row[object]) -> DelegationRecord:
    """A DelegationRecord from a delegations row joined with its execution's job_id."""
    m = row._mapping
    return DelegationRecord(
        id=m["id"],
        execution_id=m["execution_id"],
        job_id=m["job_id"],
        atom_name=m["atom_name"],
        attempt=m["attempt"],
        token_hash=m["token_hash"],
        deadline=m["deadline"],
        created_at=m["created_at"],
        completed_at=m["completed_at"],
        outcome=m["outcome"],
    )


def _with_atoms(conn: Connection, query: Select[tuple[object, ...]]) -> ExecutionRecord | None:
    row = conn.execute(query).one_or_none()
    if row is None:
        return None
    record = execution_from_row(row)
    rows = conn.execute(
        select(atoms).where(atoms.c.execution_id == record.id).order_by(*_ATOM_ORDER)
    )
    record.atoms = {atom.name: atom for atom in map(atom_from_row, rows)}
    return record


def _failure(data: object) -> Failure | None:
    if data is None:
        return None
    if not isinstance(data, dict):
        raise ValueError(f"stored failure is not a JSON object: {type(data).__name__}")
    return Failure.from_json(data)
