"""Real ZooKeeper for tests and development (as kazoo has kazoo.testing): `zkserver` starts
standalone servers and ensembles on free loopback ports; `nodes` waits on znodes, watch-driven.

Nothing is imported here, so that `python -m jobboard.testing.zkserver` runs the module once."""
