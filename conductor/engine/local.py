"""Running a flow to its end in this process, for scripts and tests (no board, no daemon)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from conductor.engine.compiler import compile_flow
from conductor.engine.graph import CompiledFlow
from conductor.engine.runner import Runner, RunResult
from conductor.flow.patterns import Flow
from conductor.flow.task import Task
from persistence.contract import ExecutionStore
from persistence.memory import MemoryStore


def run_flow(
    flow: Task | Flow | CompiledFlow,
    inputs: Mapping[str, Any] | None = None,
    *,
    store: ExecutionStore | None = None,
    job_id: str | None = None,
    flow_name: str = "local",
    epoch: int = 1,
    owner: str = "local",
    **options: Any,
) -> RunResult:
    """Compile (if needed) and run a flow to its end in this process; for scripts and tests.

    Creates (or, for a known `job_id`, resumes) the job's execution in `store` (default: a new
    MemoryStore), takes it over with `epoch`, and runs it. `options` go to Runner.
    """
    inputs = dict(inputs or {})
    compiled = flow if isinstance(flow, CompiledFlow) else compile_flow(flow, inputs)
    store = store if store is not None else MemoryStore()
    created = store.create_execution(job_id or str(uuid.uuid4()), flow_name, "1", inputs)
    execution = store.take_over(created.id, epoch, owner)
    return Runner(store, compiled, execution, epoch, **options).run()
