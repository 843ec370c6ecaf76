"""Demo flows shipped with zkconductor, used by `make demo`, the chaos suite and the benchmarks.

`demo.steps` — inputs {"steps": int, "seconds": float, "ledger": path}: `steps` tasks in a line
(step-1 ... step-N). Each task, when it starts, appends one JSON line {"job", "task", "attempt",
"pid", "t"} to the ledger file (O_APPEND, so concurrent writers never interleave a line), then
sleeps `seconds`. The ledger is the ground truth of what ran where and when: checkers count
executions per task from it.

`demo.approval` — inputs {"ledger": path, "timeout"?: seconds, "retries"?: int}: a task
`request` delegates (with a deadline `timeout` seconds ahead, if given) and appends
{"job", "task", "token", "attempt"} (and "url" when an HTTP endpoint is configured) to the
ledger: whoever reads the ledger plays the third party and completes the token (CLI, Python or
HTTP). The job parks meanwhile. Then `apply` uses the completion's result: it records
{"job", "task", "decision"} in the ledger and returns {"decision": result}. `retries` lets the
request be retried when its deadline passes (every token it handed out stays valid).

Load them with `conductor run --flows conductor.demo`.
"""

from __future__ import annotations

import os
import time
from typing import Any

from conductor.flow import Delegated, Retry, TaskContext, linear, task
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


@task(provides="decision")
def request_approval(ledger: str, context: TaskContext, timeout: float | None = None
                     ) -> Delegated:
    """Hand the decision to a person: save a delegation, publish its token in the ledger."""
    deadline = None if timeout is None else time.time() + timeout
    handle = context.delegate(deadline)
    record: dict[str, Any] = {"job": context.job_id, "task": context.task,
                              "token": handle.token, "attempt": context.attempt}
    if handle.url:
        record["url"] = handle.url
    append_line(ledger, record)
    return Delegated()


@task(provides="outcome")
def apply_decision(decision: Any, ledger: str, context: TaskContext) -> dict[str, Any]:
    """Use the completion's result."""
    append_line(ledger, {"job": context.job_id, "task": context.task, "decision": decision})
    return {"decision": decision}


@registered_flow("demo.approval", description="wait for a person's decision, then use it")
def approval_flow(inputs: dict[str, Any]) -> Flow:
    if not isinstance(inputs.get("ledger"), str) or not inputs["ledger"]:
        raise ValueError(f"ledger must be a file path, got {inputs.get('ledger')!r}")
    timeout = inputs.get("timeout")
    if timeout is not None and (not isinstance(timeout, (int, float)) or isinstance(timeout, bool)
                                or timeout <= 0):
        raise ValueError(f"timeout must be a number of seconds > 0, got {timeout!r}")
    retries = inputs.get("retries", 0)
    if not isinstance(retries, int) or isinstance(retries, bool) or not 0 <= retries <= 100:
        raise ValueError(f"retries must be an integer from 0 to 100, got {retries!r}")
    request = request_approval.with_options(
        name="request", retry=Retry(times=retries) if retries else None)
    return linear(request, apply_decision.with_options(name="apply"), name="demo.approval")
