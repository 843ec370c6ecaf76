"""Settings of a chaos run, validated before anything starts."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEMO_FLOWS = ("conductor.demo",)
DEMO_FLOW = "demo.steps"


class ChaosConfigError(ValueError):
    """A chaos setting is out of range; the message names it."""


@dataclass
class ChaosConfig:
    """What to run and how hard to shake it. Times are in seconds."""

    jobs: int = 200
    conductors: int = 3
    max_jobs: int = 4  # --max-jobs of each conductor
    flows: tuple[str, ...] = DEMO_FLOWS  # --flows of each conductor
    flow: str = DEMO_FLOW
    inputs: dict[str, Any] | None = None
    """Inputs of every job; None: demo.steps inputs from `steps` and `seconds` (the demo's own
    ledger goes to the work directory)."""
    steps: int = 5
    seconds: float = 0.1
    session_timeout: float = 2.0
    interval: float = 1.5
    """Mean time between chaos events (each a seeded choice of kill, pause or leader kill)."""
    duration: float | None = None
    """Stop the chaos after this long (default: when every job has completed)."""
    kill_weight: float = 2.0
    pause_weight: float = 2.0
    leader_kill_weight: float = 1.0
    pause_min: float = 0.3  # pauses last pause_min..pause_max x session_timeout
    pause_max: float = 2.5
    seed: int = 1
    db: str | None = None  # default: a SQLite file in the work directory
    work_dir: Path | None = None  # default: a temporary directory, removed afterwards
    bound: float | None = None  # default: see default_bound()
    expected_state: str = "SUCCESS"
    zk_tick_ms: int = 200
    max_crashes: int = 1000
    """--max-crashes of each conductor: the runner's own kills must never dead-letter a job."""
    extra_args: tuple[str, ...] = field(default_factory=tuple)

    def validate(self) -> None:
        _at_least("jobs", self.jobs, 1)
        _at_least("conductors", self.conductors, 2)
        _at_least("max_jobs", self.max_jobs, 1)
        _at_least("steps", self.steps, 1)
        for name in ("seconds", "interval", "kill_weight", "pause_weight",
                     "leader_kill_weight"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ChaosConfigError(f"{name} must be a number >= 0, got {value!r}")
        if self.interval <= 0:
            raise ChaosConfigError(f"interval must be > 0, got {self.interval!r}")
        if self.session_timeout < 2 * self.zk_tick_ms / 1000:
            raise ChaosConfigError(
                f"session_timeout must be at least 2 ZooKeeper ticks "
                f"({2 * self.zk_tick_ms / 1000:g} s), got {self.session_timeout!r}")
        if not 0 < self.pause_min <= self.pause_max:
            raise ChaosConfigError(f"pause range must satisfy 0 < min <= max, got "
                                   f"{self.pause_min!r}..{self.pause_max!r}")
        if self.duration is not None and self.duration <= 0:
            raise ChaosConfigError(f"duration must be > 0, got {self.duration!r}")
        if self.bound is not None and self.bound <= 0:
            raise ChaosConfigError(f"bound must be > 0, got {self.bound!r}")
        if not self.flows:
            raise ChaosConfigError("flows: give at least one module or file of flows")
        if self.inputs is None and self.flow != DEMO_FLOW:
            raise ChaosConfigError(f"inputs are required for flow {self.flow!r} (only "
                                   f"{DEMO_FLOW} has default inputs)")

    def job_inputs(self, demo_ledger: Path) -> dict[str, Any]:
        if self.inputs is not None:
            return dict(self.inputs)
        return {"steps": self.steps, "seconds": self.seconds, "ledger": str(demo_ledger)}

    def ideal_time(self) -> float:
        """The work of every job spread over every slot, with nothing going wrong."""
        return self.jobs * self.steps * self.seconds / (self.conductors * self.max_jobs) \
            if self.inputs is None else 0.0

    def bound_for(self, events: int) -> float:
        """The bound on first post -> last completion: `bound` if set, else one minute plus
        twice the ideal time plus, per chaos event, a session expiry and five seconds (a kill
        or a pause stalls the jobs held for about one session timeout; a leader election
        takes a few seconds)."""
        if self.bound is not None:
            return self.bound
        return 60.0 + 2 * self.ideal_time() + events * (self.session_timeout + 5.0)


def _at_least(name: str, value: object, low: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise ChaosConfigError(f"{name} must be an integer >= {low}, got {value!r}")
