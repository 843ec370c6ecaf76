"""The engine: compiler, passive core, active runner, and local dispatchers.

    from conductor.engine import run_flow
    outcome = run_flow(my_flow, {"n": 3})          # MemoryStore, thread pool
    outcome.state, outcome.result

The names below are loaded on first use (PEP 562): importing the passive core
(`conductor.engine.core`) loads neither the runner, the dispatchers nor any store.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from conductor.engine.clock import Clock, FakeClock, SystemClock
    from conductor.engine.compiler import compile_flow
    from conductor.engine.control import RunControl
    from conductor.engine.core import Core
    from conductor.engine.decisions import AttemptFailure, Decision, Invocation
    from conductor.engine.dispatch import (
        Dispatcher,
        LocalDispatcher,
        ProcessDispatcher,
        TaskNotSendable,
    )
    from conductor.engine.graph import AtomSpec, CompiledFlow, Graph, Source
    from conductor.engine.local import run_flow
    from conductor.engine.runner import Runner, RunResult, RunState

_HOMES = {
    "AtomSpec": "conductor.engine.graph",
    "AttemptFailure": "conductor.engine.decisions",
    "Clock": "conductor.engine.clock",
    "CompiledFlow": "conductor.engine.graph",
    "Core": "conductor.engine.core",
    "Decision": "conductor.engine.decisions",
    "Dispatcher": "conductor.engine.dispatch",
    "FakeClock": "conductor.engine.clock",
    "Graph": "conductor.engine.graph",
    "Invocation": "conductor.engine.decisions",
    "LocalDispatcher": "conductor.engine.dispatch",
    "ProcessDispatcher": "conductor.engine.dispatch",
    "RunControl": "conductor.engine.control",
    "RunResult": "conductor.engine.runner",
    "RunState": "conductor.engine.runner",
    "Runner": "conductor.engine.runner",
    "Source": "conductor.engine.graph",
    "SystemClock": "conductor.engine.clock",
    "TaskNotSendable": "conductor.engine.dispatch",
    "compile_flow": "conductor.engine.compiler",
    "run_flow": "conductor.engine.local",
}

__all__ = [
    "AtomSpec",
    "AttemptFailure",
    "Clock",
    "CompiledFlow",
    "Core",
    "Decision",
    "Dispatcher",
    "FakeClock",
    "Graph",
    "Invocation",
    "LocalDispatcher",
    "ProcessDispatcher",
    "RunControl",
    "RunResult",
    "RunState",
    "Runner",
    "Source",
    "SystemClock",
    "TaskNotSendable",
    "compile_flow",
    "run_flow",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOMES})
