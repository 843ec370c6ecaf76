"""Alembic environment of the persistence schema, run only through persistence.migrate.

persistence.migrate passes an open connection (already in a transaction holding the migration
lock) in the config's attributes; no alembic.ini and no URL are read here.
"""

from __future__ import annotations

from alembic import context

from persistence.schema import VERSION_TABLE, metadata

connection = context.config.attributes.get("connection")
if connection is None or context.is_offline_mode():
    raise RuntimeError(
        "the zkconductor schema is migrated through persistence.migrate.upgrade(url) "
        "(CLI: conductor db upgrade --db URL), not by running alembic directly"
    )

context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=VERSION_TABLE,
    # SQLite cannot ALTER most things in place; batch mode rebuilds the table instead.
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
