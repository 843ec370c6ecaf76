"""The store's write statements, built once per dialect from the schema (SQLAlchemy Core).

Every statement here is cacheable by SQLAlchemy (single-row, bound parameters only), so the hot
path pays no SQL compilation after the first use.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, Update, bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.dml import Insert

from persistence.schema import atoms, delegations, executions, ownerships

ATOM_VALUE_COLUMNS = (
    "kind", "state", "intention", "attempt", "result", "failure",
    "not_before", "started_at", "finished_at",
)
"""The columns an atom upsert replaces (all but the key)."""


class WriteStatements:
    """The statements of SqlStore's write transactions for one dialect.

    Fence parameters are `fence_id` and `fence_epoch`; atom parameters are the atoms columns.
    """

    def __init__(self, dialect: str) -> None:
        self._insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        is_ours = (
            executions.c.id == bindparam("fence_id"),
            executions.c.epoch == bindparam("fence_epoch"),
        )
        self.fence_update: Update = update(executions).where(*is_ours)
        """Fence and execution change in one: UPDATE ... WHERE id AND epoch (SET from params)."""
        self.fence_lock: Select[Any] = select(executions.c.epoch).where(*is_ours).with_for_update()
        """Fence alone: a locking read (PostgreSQL row lock; SQLite holds its write lock)."""
        self.atom_upsert = self._upsert(self._insert(atoms))
        """Insert or wholly replace one atom row."""
        fenced_values = (
            select(*(bindparam(column.name, type_=column.type) for column in atoms.c))
            .where(*is_ours)
            .with_for_update()
        )
        self.fenced_atom_upsert = self._upsert(
            self._insert(atoms).from_select([column.name for column in atoms.c], fenced_values)
        ).execution_options(preserve_rowcount=True)  # SQLAlchemy keeps it for UPDATE/DELETE only
        """The atom upsert with the fence folded in: it writes its row (rowcount 1) only if the
        execution still has the epoch, row-locking it on PostgreSQL. One statement instead of
        two on the hot path of atom-only saves."""
        self.insert_execution = self._insert(executions).on_conflict_do_nothing(
            index_elements=[executions.c.job_id]
        ).execution_options(preserve_rowcount=True)  # rowcount 0: the job had one already
        """Create an execution unless its job already has one."""
        self.take_over_by_job: Update = (
            update(executions)
            .where(executions.c.job_id == bindparam("for_job"),
                   executions.c.epoch < bindparam("new_epoch"))
            .values(epoch=bindparam("new_epoch"), owner=bindparam("new_owner"),
                    updated_at=bindparam("now"))
        )
        """Take over a job's execution if the epoch is newer (rowcount 1) — the fence raise."""
        self.insert_ownership: Insert = ownerships.insert()
        """One row of the owner/epoch history."""

    def insert_delegations(self, rows: list[dict[str, Any]]) -> Insert:
        """Insert delegation rows, leaving alone any whose token hash is already saved."""
        return self._insert(delegations).values(rows).on_conflict_do_nothing(
            index_elements=[delegations.c.token_hash]
        )

    @staticmethod
    def _upsert(statement: Any) -> Insert:
        upsert: Insert = statement.on_conflict_do_update(
            index_elements=[atoms.c.execution_id, atoms.c.name],
            set_={name: statement.excluded[name] for name in ATOM_VALUE_COLUMNS},
        )
        return upsert
