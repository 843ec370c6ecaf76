"""Demo flows shipped with zkconductor, used by `make demo`, the chaos suite and the benchmarks.

`demo.steps` — inputs {"steps": int, "seconds": float, "ledger": path}: `steps` tasks in a line
(step-1 ... step-N). Each task, when it starts, appends one JSON line {"job", "task", "attempt",
"pid", "t"} to the ledger file (O_APPEND, so concurrent writers never interleave a line), then
sleeps `seconds`. The ledger is the ground truth of what ran where and when: checkers count
executions per task from it.

Load them with `conductor run --flows conductor.demo`.
"""

from __future__ import annotations

import os
import time
from typing import Any

from conductor.flow import TaskContext, linear, task
from conductor.flow.patterns import Flow
from conductor.ledger import append_line
from conductor.registry import registered_flow

MAX_STEPS = 10_000


@task
def ledger_step(seconds: float, ledger: str, context: TaskContext) -> None:
    """Record this start in the ledger, then work (sleep) for `seconds`."""
    append_line(ledger, {
        "job": context.job_id,
        "task": context.task,
        "attempt": context.attempt,
        "pid": os.getpid(),
        "t": time.time(),
    })
    if seconds > 0:
        time.sleep(seconds)


@registered_flow("demo.steps", description="N ledger-recording steps in a line")
def steps_flow(inputs: dict[str, Any]) -> Flow:
    steps = inputs["steps"]
    if not isinstance(steps, int) or isinstance(steps, bool) or not 1 <= steps <= MAX_STEPS:
        raise ValueError(f"steps must be an integer from 1 to {MAX_STEPS}, got {steps!r}")
    seconds = inputs["seconds"]
    if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or seconds < 0:
        raise ValueError(f"seconds must be a number >= 0, got {seconds!r}")
    if not isinstance(inputs["ledger"], str) or not inputs["ledger"]:
        raise ValueError(f"ledger must be a file path, got {inputs['ledger']!r}")
    return linear(
        *(ledger_step.with_options(name=f"step-{i}") for i in range(1, steps + 1)),
        name="demo.steps",
    )
