"""The conductor daemon: claims jobs from the board, runs them with saved state, and hands them
over cleanly (or by dying: its claims vanish with its ZooKeeper session)."""

from conductor.daemon.conductor import Conductor

__all__ = ["Conductor"]
