"""Initial schema: executions, atoms, ownerships (owner/epoch history), delegations.

Revision ID: 0001
Revises:
Create Date: 2026-11-28

Migrations are frozen history: they spell out plain SQLAlchemy types rather than importing
persistence.schema, whose definitions move on with later revisions.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _time(name: str, *, nullable: bool) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _json(name: str, *, nullable: bool) -> sa.Column[object]:
    return sa.Column(name, sa.JSON(none_as_null=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "executions",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("job_id", sa.String(length=255), nullable=False),
        sa.Column("flow_name", sa.String(length=255), nullable=False),
        sa.Column("flow_version", sa.String(length=64), nullable=False),
        _json("inputs", nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("epoch", sa.BigInteger(), nullable=False),
        sa.Column("owner", sa.String(length=255), nullable=True),
        _time("created_at", nullable=False),
        _time("updated_at", nullable=False),
        _time("finished_at", nullable=True),
        _json("result", nullable=True),
        _json("failure", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_executions"),
        sa.UniqueConstraint("job_id", name="uq_executions_job_id"),
    )
    op.create_index("ix_executions_updated_at", "executions", ["updated_at"])
    op.create_index(
        "ix_executions_flow_name_updated_at", "executions", ["flow_name", "updated_at"]
    )
    op.create_index("ix_executions_finished_at", "executions", ["finished_at"])

    op.create_table(
        "atoms",
        sa.Column("execution_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("intention", sa.String(length=16), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        _json("result", nullable=True),
        _json("failure", nullable=True),
        _time("not_before", nullable=True),
        _time("started_at", nullable=True),
        _time("finished_at", nullable=True),
        sa.ForeignKeyConstraint(
            ["execution_id"], ["executions.id"],
            name="fk_atoms_execution_id_executions", ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("execution_id", "name", name="pk_atoms"),
    )

    op.create_table(
        "ownerships",
        sa.Column("execution_id", sa.String(length=36), nullable=False),
        sa.Column("epoch", sa.BigInteger(), nullable=False),
        sa.Column("owner", sa.String(length=255), nullable=False),
        _time("taken_at", nullable=False),
        sa.ForeignKeyConstraint(
            ["execution_id"], ["executions.id"],
            name="fk_ownerships_execution_id_executions", ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("execution_id", "epoch", name="pk_ownerships"),
    )

    op.create_table(
        "delegations",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("execution_id", sa.String(length=36), nullable=False),
        sa.Column("atom_name", sa.String(length=255), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=128), nullable=False),
        _time("deadline", nullable=True),
        _time("created_at", nullable=False),
        _time("completed_at", nullable=True),
        _json("outcome", nullable=True),
        sa.Column("completion_id", sa.String(length=36), nullable=True),
        sa.ForeignKeyConstraint(
            ["execution_id"], ["executions.id"],
            name="fk_delegations_execution_id_executions", ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_delegations"),
        sa.UniqueConstraint("token_hash", name="uq_delegations_token_hash"),
    )
    op.create_index("ix_delegations_execution_id", "delegations", ["execution_id"])


def downgrade() -> None:
    op.drop_table("delegations")
    op.drop_table("ownerships")
    op.drop_table("atoms")
    op.drop_table("executions")
