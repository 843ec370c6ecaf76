"""The SQL execution store (SQLite and PostgreSQL): fenced writes with SQLAlchemy Core.

Fencing in SQL terms: the first statement of every save is conditional on the execution row
having the writer's epoch (`... WHERE id = :id AND epoch = :epoch`): the UPDATE writing an
execution change, else the first atom's upsert fed by a locking SELECT of that row, else that
locking SELECT alone. If it matches no row the writer is stale: the transaction is rolled back and
Fenced raised, so nothing at all was written. If it matches, the row is now locked against other
writers until COMMIT (PostgreSQL row lock; on SQLite the whole database is write-locked from
BEGIN IMMEDIATE), so no take-over can slip in between the check and the writes that follow it in
the same transaction.

Every write is safe to apply twice (whole-row upserts, take-over accepting its own claim again,
completion ids), which is what makes retrying a transaction whose COMMIT outcome is unknown safe.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, delete, select, update

from persistence import jsonvalue, sqlreads
from persistence.connect import WRITE_OPTION, PreEncoded, StoreOptions, masked
from persistence.errors import (
    DelegationAlreadyCompleted,
    Fenced,
    UnknownDelegation,
    UnknownExecution,
)
from persistence.records import (
    AtomRecord,
    AtomState,
    DelegationRecord,
    ExecutionChange,
    ExecutionRecord,
    ExecutionState,
    Failure,
    Intention,
    JSONValue,
    NewDelegation,
    Ownership,
)
from persistence.retry import Retrier
from persistence.schema import delegations, executions, ownerships
from persistence.sqlstatements import WriteStatements

T = TypeVar("T")



class SqlStore:
    """ExecutionStore on a SQL database. Thread-safe; one per process is enough."""

    def __init__(self, engine: Engine, options: StoreOptions | None = None) -> None:
        self.options = options or StoreOptions()
        self.engine = engine
        self.url = masked(engine.url)
        dialect = self._dialect = engine.dialect.name
        if dialect not in ("sqlite", "postgresql"):
            raise ValueError(f"{self.url}: unsupported database dialect {dialect!r}")
        self._writer = engine.execution_options(**{WRITE_OPTION: True})
        # Reads of several statements see one snapshot (SQLite: any transaction does).
        self._reader = (
            engine.execution_options(isolation_level="REPEATABLE READ")
            if dialect == "postgresql"
            else engine
        )
        self._retrier = Retrier(self.options.retry_for, where=self.url)
        self._sql = WriteStatements(dialect)
        # SQLite has one writer at a time. Threads of this process queue on a lock (woken the
        # moment it is free) instead of in SQLite's busy handler, which sleeps 1, 2, 5, ... ms
        # between tries and so wastes most of the time under contention.
        self._write_lock = threading.Lock() if dialect == "sqlite" else contextlib.nullcontext()

    # -- writes ----------------------------------------------------------------------------

    def create_execution(
        self,
        job_id: str,
        flow_name: str,
        flow_version: str,
        inputs: dict[str, JSONValue],
    ) -> ExecutionRecord:
        encoded = _encode(inputs, what=f"inputs of job {job_id}")
        new_id = str(uuid.uuid4())

        def transaction(conn: Connection) -> ExecutionRecord:
            self._insert_execution(conn, id=new_id, job_id=job_id, flow_name=flow_name,
                                   flow_version=flow_version, inputs=encoded, now=time.time())
            return _same_flow(sqlreads.execution_by_job(conn, job_id), job_id, flow_name)

        return self._write(transaction, what=f"create execution of job {job_id}")

    def take_over(self, execution_id: str, epoch: int, owner: str) -> ExecutionRecord:
        def transaction(conn: Connection) -> ExecutionRecord:
            now = time.time()
            taken = conn.execute(
                update(executions)
                .where(executions.c.id == execution_id, executions.c.epoch < epoch)
                .values(epoch=epoch, owner=owner, updated_at=now)
            )
            if taken.rowcount == 1:
                conn.execute(
                    ownerships.insert(),
                    {"execution_id": execution_id, "epoch": epoch, "owner": owner,
                     "taken_at": now},
                )
            else:
                row = conn.execute(
                    select(executions.c.epoch, executions.c.owner)
                    .where(executions.c.id == execution_id)
                ).one_or_none()
                if row is None:
                    raise UnknownExecution(f"no execution {execution_id}")
                if not (row.epoch == epoch and row.owner == owner):  # not our own claim again
                    raise Fenced(execution_id, epoch, int(row.epoch))
            record = sqlreads.execution_by_id(conn, execution_id)
            assert record is not None  # the row is locked by the update above
            return record

        return self._write(transaction, what=f"take over execution {execution_id}")

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
        encoded = _encode(inputs, what=f"inputs of job {job_id}")
        new_id = str(uuid.uuid4())

        def transaction(conn: Connection) -> ExecutionRecord:
            now = round(time.time(), 6)  # the columns keep microseconds
            inserted = self._insert_execution(conn, id=new_id, job_id=job_id,
                                              flow_name=flow_name, flow_version=flow_version,
                                              inputs=encoded, now=now)
            taken = conn.execute(
                self._sql.take_over_by_job,
                {"for_job": job_id, "new_epoch": epoch, "new_owner": owner, "now": now},
            )
            if inserted and taken.rowcount == 1:  # new, and ours: no need to read it back
                conn.execute(self._sql.insert_ownership, {
                    "execution_id": new_id, "epoch": epoch, "owner": owner, "taken_at": now})
                return ExecutionRecord(
                    id=new_id, job_id=job_id, flow_name=flow_name, flow_version=flow_version,
                    inputs=jsonvalue.loads(encoded) if encoded is not None else {},
                    state=ExecutionState.PENDING, epoch=epoch, owner=owner,
                    created_at=now, updated_at=now)
            record = _same_flow(sqlreads.execution_by_job(conn, job_id), job_id, flow_name)
            if taken.rowcount == 1:
                conn.execute(
                    self._sql.insert_ownership,
                    {"execution_id": record.id, "epoch": epoch, "owner": owner,
                     "taken_at": now},
                )
            elif not (record.epoch == epoch and record.owner == owner):
                raise Fenced(record.id, epoch, record.epoch)
            return record

        return self._write(transaction, what=f"open the execution of job {job_id}")

    def _insert_execution(self, conn: Connection, *, id: str, job_id: str, flow_name: str,
                          flow_version: str, inputs: PreEncoded | None, now: float) -> bool:
        """Create the job's execution (PENDING, epoch 0) unless it has one; True if created."""
        inserted = conn.execute(self._sql.insert_execution, {
            "id": id, "job_id": job_id, "flow_name": flow_name,
            "flow_version": flow_version, "inputs": inputs,
            "state": ExecutionState.PENDING.value, "epoch": 0, "owner": None,
            "created_at": now, "updated_at": now,
        })
        return bool(inserted.rowcount == 1)

    def save(
        self,
        execution_id: str,
        epoch: int,
        atoms: Sequence[AtomRecord] = (),
        execution: ExecutionChange | None = None,
        delegations: Sequence[NewDelegation] = (),
    ) -> None:
        # Encode (and so validate) everything before the transaction: all or nothing.
        atom_rows = [_atom_row(execution_id, atom) for atom in atoms]
        change: dict[str, Any] = {}
        if execution is not None:
            state = ExecutionState(execution.state)
            change = {
                "state": state.value,
                "result": _encode(execution.result, what=f"result of execution {execution_id}"),
                "failure": _encode_failure(execution.failure),
            }
            if state.finished:
                change["finished_at"] = None  # set to the commit's time below
        delegation_rows = [
            {"execution_id": execution_id, "atom_name": d.atom_name, "attempt": d.attempt,
             "token_hash": d.token_hash, "deadline": d.deadline}
            for d in delegations
        ]

        def transaction(conn: Connection) -> None:
            now = time.time()
            fence = {"fence_id": execution_id, "fence_epoch": epoch}
            rows = atom_rows
            # The fence comes first, folded into the first write when there is one.
            if change:
                values = {**change, "updated_at": now}
                if "finished_at" in values:
                    values["finished_at"] = now
                ours = conn.execute(self._sql.fence_update, {**fence, **values}).rowcount == 1
            elif rows:
                first, rows = {**fence, **rows[0]}, rows[1:]
                ours = conn.execute(self._sql.fenced_atom_upsert, first).rowcount == 1
            else:
                ours = conn.execute(self._sql.fence_lock, fence).first() is not None
            if not ours:
                stored = sqlreads.stored_epoch(conn, execution_id)
                if stored is None:
                    raise UnknownExecution(f"no execution {execution_id}")
                raise Fenced(execution_id, epoch, stored)
            self._upsert_atoms(conn, rows)
            if delegation_rows:
                self._insert_new_delegations(conn, delegation_rows, now)

        self._write(transaction, what=f"save execution {execution_id}")

    def complete_delegation(self, token_hash: str, outcome: JSONValue) -> DelegationRecord:
        encoded = _encode(outcome, what="delegation outcome")
        completion_id = str(uuid.uuid4())

        def transaction(conn: Connection) -> DelegationRecord:
            completed = conn.execute(
                update(delegations)
                .where(delegations.c.token_hash == token_hash,
                       delegations.c.completed_at.is_(None))
                .values(completed_at=time.time(), outcome=encoded, completion_id=completion_id)
            )
            found = sqlreads.delegation_by_hash(conn, token_hash)
            if found is None:
                raise UnknownDelegation("no delegation has that token")
            if completed.rowcount != 1:
                winner = conn.execute(
                    select(delegations.c.completion_id)
                    .where(delegations.c.token_hash == token_hash)
                ).scalar_one()
                if winner != completion_id:  # not our own earlier, unacknowledged commit
                    raise DelegationAlreadyCompleted(
                        f"delegation of {found.atom_name!r} in job {found.job_id} was already "
                        "completed"
                    )
            return found

        return self._write(transaction, what="complete delegation")

    def collect_garbage(self, older_than: float) -> int:
        def transaction(conn: Connection) -> int:
            cutoff = time.time() - older_than
            deleted = conn.execute(
                delete(executions).where(
                    executions.c.finished_at.is_not(None), executions.c.finished_at < cutoff
                )
            )
            return int(deleted.rowcount)

        return self._write(transaction, what="collect garbage")

    # -- reads -----------------------------------------------------------------------------

    def load(self, execution_id: str) -> ExecutionRecord:
        record = self._read(
            lambda conn: sqlreads.execution_by_id(conn, execution_id),
            what=f"load execution {execution_id}",
        )
        if record is None:
            raise UnknownExecution(f"no execution {execution_id}")
        return record

    def find_by_job(self, job_id: str) -> ExecutionRecord | None:
        return self._read(
            lambda conn: sqlreads.execution_by_job(conn, job_id),
            what=f"find execution of job {job_id}",
        )

    def owners(self, execution_id: str) -> list[Ownership]:
        found = self._read(
            lambda conn: sqlreads.owners_of(conn, execution_id),
            what=f"owners of execution {execution_id}",
        )
        if found is None:
            raise UnknownExecution(f"no execution {execution_id}")
        return found

    def history(
        self,
        *,
        limit: int = 50,
        flow_name: str | None = None,
        states: Iterable[ExecutionState] | None = None,
    ) -> list[ExecutionRecord]:
        wanted = None if states is None else list(states)
        return self._read(
            lambda conn: sqlreads.history(conn, limit=limit, flow_name=flow_name, states=wanted),
            what="execution history",
        )

    def delegation(self, token_hash: str) -> DelegationRecord:
        found = self._read(
            lambda conn: sqlreads.delegation_by_hash(conn, token_hash), what="find delegation"
        )
        if found is None:
            raise UnknownDelegation("no delegation has that token")
        return found

    def delegations(self, execution_id: str) -> list[DelegationRecord]:
        return self._read(
            lambda conn: sqlreads.delegations_of(conn, execution_id),
            what=f"delegations of execution {execution_id}",
        )

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> SqlStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SqlStore({self.url!r})"

    # -- plumbing --------------------------------------------------------------------------

    def _write(self, transaction: Callable[[Connection], T], *, what: str) -> T:
        def attempt() -> T:
            with self._write_lock, self._writer.begin() as conn:
                return transaction(conn)

        return self._retrier.run(attempt, what=what)

    def _read(self, query: Callable[[Connection], T], *, what: str) -> T:
        def attempt() -> T:
            with self._reader.begin() as conn:
                return query(conn)

        return self._retrier.run(attempt, what=what)

    def _upsert_atoms(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        """Insert or wholly replace atom rows with a cached single-row statement.

        Not one multi-row INSERT: SQLAlchemy cannot cache those, and compiling one costs more
        than a round trip. On PostgreSQL not executemany either: psycopg runs it in pipeline
        mode, after which the server does not apply idle_in_transaction_session_timeout (the
        fencing tests catch that), so one execute per row there.
        """
        if len(rows) > 1 and self._dialect == "sqlite":
            conn.execute(self._sql.atom_upsert, rows)
            return
        for row in rows:
            conn.execute(self._sql.atom_upsert, row)

    def _insert_new_delegations(
        self, conn: Connection, rows: list[dict[str, Any]], now: float
    ) -> None:
        """Insert delegations; one already there from our own earlier try is fine, a token hash
        belonging to another delegation is refused (and the whole save rolled back)."""
        conn.execute(self._sql.insert_delegations([{**row, "created_at": now} for row in rows]))
        stored = {
            r.token_hash: (r.execution_id, r.atom_name, r.attempt)
            for r in conn.execute(
                select(delegations.c.token_hash, delegations.c.execution_id,
                       delegations.c.atom_name, delegations.c.attempt)
                .where(delegations.c.token_hash.in_([row["token_hash"] for row in rows]))
            )
        }
        for row in rows:
            if stored.get(row["token_hash"]) != (
                row["execution_id"], row["atom_name"], row["attempt"]
            ):
                raise ValueError(
                    f"delegation of {row['atom_name']!r} (attempt {row['attempt']}): its token "
                    "hash is already used by another delegation; nothing was saved"
                )


def _same_flow(record: ExecutionRecord | None, job_id: str, flow_name: str) -> ExecutionRecord:
    """The job's execution, if it runs `flow_name` (a job's flow never changes)."""
    assert record is not None  # inserted in this transaction or there already
    if record.flow_name != flow_name:
        raise ValueError(
            f"job {job_id} already has an execution of flow {record.flow_name!r}, "
            f"not {flow_name!r}"
        )
    return record


def _encode(value: JSONValue, *, what: str) -> PreEncoded | None:
    """JSON text for a JSON column (None stays SQL NULL), or NotSerializable naming `what`."""
    if value is None:
        return None
    return PreEncoded(jsonvalue.dumps(value, what=what))


def _encode_failure(failure: Failure | None) -> PreEncoded | None:
    if failure is None:
        return None
    return _encode(failure.to_json(), what=f"failure {failure.type}")


def _atom_row(execution_id: str, atom: AtomRecord) -> dict[str, Any]:
    return {
        "execution_id": execution_id,
        "name": atom.name,
        "kind": atom.kind,
        "state": AtomState(atom.state).value,
        "intention": Intention(atom.intention).value,
        "attempt": atom.attempt,
        "result": _encode(
            atom.result, what=f"result of task {atom.name!r} (execution {execution_id})"
        ),
        "failure": _encode_failure(atom.failure),
        "not_before": atom.not_before,
        "started_at": atom.started_at,
        "finished_at": atom.finished_at,
    }
