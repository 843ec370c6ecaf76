"""Shared test configuration.

Fixtures that several test packages use live in tests/fixtures/ as pytest plugins:
- tests/fixtures/zookeeper.py: real ZooKeeper servers (standalone and 3-server ensembles);
- tests/fixtures/databases.py: SQLite files and fresh PostgreSQL databases.
Package-specific fixtures live in each tests/<package>/conftest.py.
"""

pytest_plugins = ["tests.fixtures.zookeeper", "tests.fixtures.databases"]
