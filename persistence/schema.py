"""The SQL schema of saved executions: four tables, shared by SQLite and PostgreSQL.

This module is the single source of truth for the schema: the Alembic migrations in
persistence/migrations must produce exactly these tables (tests/persistence/test_migrations.py
compares them), and the store's statements are built from these Table objects.

Column choices (see docs/persistence.md):
- timestamps are `timestamp with time zone` (UTC) on PostgreSQL, ISO text on SQLite; records carry
  float UNIX seconds, converted by `UnixTime`;
- JSON values (inputs, results, failures, outcomes) use the JSON type on both databases: it keeps
  the text as written (key order, number spelling), with no size cap beyond the database's own;
- the epoch is a BIGINT: ZooKeeper's czxid is a 64-bit number.
"""

from __future__ import annotations

import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    TypeDecorator,
    UniqueConstraint,
)

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

VERSION_TABLE = "zkc_alembic_version"
"""Alembic's revision table for this schema (named apart from an application's own)."""


class UnixTime(TypeDecorator[float]):
    """A UTC `timestamp with time zone` column that reads and writes float UNIX seconds."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> datetime.datetime | None:
        if value is None:
            return None
        if dialect.name == "sqlite":
            # SQLite stores naive ISO text; keep it UTC so text order is time order.
            return datetime.datetime.fromtimestamp(value, datetime.timezone.utc).replace(
                tzinfo=None
            )
        return datetime.datetime.fromtimestamp(value, datetime.timezone.utc)

    def process_result_value(self, value: Any, dialect: Dialect) -> float | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.timezone.utc)
        return float(value.timestamp())


def _json() -> JSON:
    # none_as_null: a Python None is stored as SQL NULL, not as the JSON text 'null'.
    return JSON(none_as_null=True)


executions = Table(
    "executions",
    metadata,
    Column("id", String(36), nullable=False),
    Column("job_id", String(255), nullable=False),
    Column("flow_name", String(255), nullable=False),
    Column("flow_version", String(64), nullable=False),
    Column("inputs", _json(), nullable=False),
    Column("state", String(16), nullable=False),
    Column("epoch", BigInteger(), nullable=False),
    Column("owner", String(255), nullable=True),
    Column("created_at", UnixTime(), nullable=False),
    Column("updated_at", UnixTime(), nullable=False),
    Column("finished_at", UnixTime(), nullable=True),
    Column("result", _json(), nullable=True),
    Column("failure", _json(), nullable=True),
    PrimaryKeyConstraint("id"),
    UniqueConstraint("job_id"),
    Index(None, "updated_at"),
    Index(None, "flow_name", "updated_at"),
    Index(None, "finished_at"),
)

atoms = Table(
    "atoms",
    metadata,
    Column("execution_id", String(36), nullable=False),
    Column("name", String(255), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("state", String(16), nullable=False),
    Column("intention", String(16), nullable=False),
    Column("attempt", Integer(), nullable=False),
    Column("result", _json(), nullable=True),
    Column("failure", _json(), nullable=True),
    Column("not_before", UnixTime(), nullable=True),
    Column("started_at", UnixTime(), nullable=True),
    Column("finished_at", UnixTime(), nullable=True),
    # The primary key is the upsert key: one row per atom name within an execution.
    PrimaryKeyConstraint("execution_id", "name"),
    ForeignKeyConstraint(["execution_id"], ["executions.id"], ondelete="CASCADE"),
)

ownerships = Table(
    "ownerships",
    metadata,
    Column(
        "execution_id",
        String(36),
        ForeignKey("executions.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("epoch", BigInteger(), nullable=False),
    Column("owner", String(255), nullable=False),
    Column("taken_at", UnixTime(), nullable=False),
    # Epochs only grow, so (execution, epoch) names one take-over.
    PrimaryKeyConstraint("execution_id", "epoch"),
)

delegations = Table(
    "delegations",
    metadata,
    Column("id", Integer(), autoincrement=True, nullable=False),
    Column(
        "execution_id",
        String(36),
        ForeignKey("executions.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("atom_name", String(255), nullable=False),
    Column("attempt", Integer(), nullable=False),
    Column("token_hash", String(128), nullable=False),
    Column("deadline", UnixTime(), nullable=True),
    Column("created_at", UnixTime(), nullable=False),
    Column("completed_at", UnixTime(), nullable=True),
    Column("outcome", _json(), nullable=True),
    # Random id of the completion that won, so a retried completion recognises its own write.
    Column("completion_id", String(36), nullable=True),
    PrimaryKeyConstraint("id"),
    UniqueConstraint("token_hash"),
    Index(None, "execution_id"),
)
