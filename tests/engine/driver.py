"""A synchronous stand-in for the runner, for deterministic tests of the passive core."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from conductor.engine import AttemptFailure, CompiledFlow, Core, Invocation
from persistence import AtomRecord, ExecutionChange, Failure


@dataclass
class Drive:
    core: Core
    trace: list[str] = field(default_factory=list)
    saved: dict[str, AtomRecord] = field(default_factory=dict)
    final: ExecutionChange | None = None
    now: float = 0.0


def drive(
    flow: CompiledFlow,
    behaviour: Callable[[Invocation], Any],
    *,
    inputs: Mapping[str, Any] | None = None,
    atoms: Mapping[str, AtomRecord] | None = None,
    failure: Failure | None = None,
    now: float = 0.0,
    stop_after: int | None = None,
) -> Drive:
    """Run the core to its end (or `stop_after` attempts), calling `behaviour` for each start:
    its return value is the outcome, an exception the failure. Saved records are copied out,
    as a store would keep them."""
    core = Core(flow, inputs or {}, atoms or {}, failure, random=lambda: 0.5)
    out = Drive(core, now=now)

    def keep(records: list[AtomRecord]) -> None:
        for rec in records:
            out.saved[rec.name] = AtomRecord(**vars(rec))

    for _ in range(10_000):
        decision = core.decide(out.now)
        keep(decision.records)
        if decision.finished:
            out.final = decision.execution
            return out
        if not decision.starts:
            if decision.wake_at is None:
                return out  # waiting on delegated work (or stalled: the test will tell)
            out.now = decision.wake_at
            continue
        for inv in decision.starts:
            if stop_after is not None and len(out.trace) >= stop_after:
                return out
            out.trace.append(f"{inv.action}:{inv.name}#{inv.attempt}")
            try:
                value = behaviour(inv)
            except Exception as exc:  # the task's failure, as data
                failed = AttemptFailure.from_exception(exc)
                keep(core.on_failure(inv.name, inv.attempt, failed, out.now)
                     if inv.action == "execute" else
                     core.on_revert_failed(inv.name, failed, out.now))
            else:
                keep(core.on_success(inv.name, inv.attempt, value, out.now)
                     if inv.action == "execute" else core.on_reverted(inv.name, out.now))
    raise AssertionError("the core did not finish")
