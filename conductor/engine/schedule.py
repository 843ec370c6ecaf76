"""What makes the passive core incremental: per-atom counters, the ready queue, delayed retries
and the attempts in flight. Nothing here is saved; it is rebuilt from the records on load."""

from __future__ import annotations

import enum
import heapq
from collections import deque
from dataclasses import dataclass, field


class InFlight(enum.Enum):
    """What an atom in flight waits for."""

    EXECUTE = "execute"  # its attempt runs
    REVERT = "revert"  # its revert runs
    DELEGATED = "delegated"  # its attempt waits for a completion from outside


@dataclass
class Schedule:
    """Unmet-predecessor counts per atom, open (not yet successful) children per container
    (None: the flow), atoms ready to start, delayed retries (a heap on not_before), what is in
    flight, and attempts found RUNNING on load that must start again."""

    unmet: dict[str, int] = field(default_factory=dict)
    open_children: dict[str | None, int] = field(default_factory=dict)
    ready: deque[str] = field(default_factory=deque)
    delayed: list[tuple[float, tuple[int, ...], str]] = field(default_factory=list)
    in_flight: dict[str, InFlight] = field(default_factory=dict)
    rerun: set[str] = field(default_factory=set)

    def enqueue(self, name: str, key: tuple[int, ...], not_before: float | None) -> None:
        """`name` may start: now, or once `not_before` has passed."""
        if not_before is not None:
            heapq.heappush(self.delayed, (not_before, key, name))
        else:
            self.ready.append(name)

    def release_due(self, now: float) -> None:
        """Move the delayed retries due at `now` to the ready queue."""
        while self.delayed and self.delayed[0][0] <= now:
            self.ready.append(heapq.heappop(self.delayed)[2])

    def due(self, now: float) -> bool:
        """Whether something is ready, or delayed and due at `now`."""
        return bool(self.ready) or bool(self.delayed and self.delayed[0][0] <= now)

    @property
    def wake_at(self) -> float | None:
        """When the earliest delayed retry becomes due."""
        return self.delayed[0][0] if self.delayed else None

    @property
    def busy(self) -> int:
        """Executes and reverts in flight (delegated attempts wait on nobody here)."""
        return sum(1 for kind in self.in_flight.values() if kind is not InFlight.DELEGATED)

    @property
    def delegated(self) -> bool:
        return InFlight.DELEGATED in self.in_flight.values()
