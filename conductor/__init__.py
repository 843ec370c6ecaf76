"""zkconductor: flows, the engine, the conductor daemon and its CLI.

Uses `jobboard` (ZooKeeper) and `persistence` (SQL); neither of them imports this package.
"""
