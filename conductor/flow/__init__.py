"""The flow API: tasks, patterns (linear, unordered, graph, repeat), retry policies, context.

    from conductor.flow import task, linear, Retry

    @task(provides="total", retry=Retry(times=2, delay=1, backoff=2))
    def add(a: int, b: int) -> int:
        return a + b
"""

from conductor.flow.context import CancelFlag, Delegated, TaskContext
from conductor.flow.errors import (
    AmbiguousProvider,
    Cancelled,
    CycleError,
    DuplicateName,
    FlowError,
    InvalidTask,
    MissingInputs,
    ResultMismatch,
    TaskTimeout,
    UnknownRebind,
)
from conductor.flow.patterns import (
    Flow,
    Graph,
    Linear,
    Repeat,
    Unordered,
    graph,
    linear,
    repeat,
    unordered,
)
from conductor.flow.retry import Retry
from conductor.flow.task import Argument, FunctionTask, Task, task

__all__ = [
    "AmbiguousProvider",
    "Argument",
    "CancelFlag",
    "Cancelled",
    "CycleError",
    "Delegated",
    "DuplicateName",
    "Flow",
    "FlowError",
    "FunctionTask",
    "Graph",
    "InvalidTask",
    "Linear",
    "MissingInputs",
    "Repeat",
    "ResultMismatch",
    "Retry",
    "Task",
    "TaskContext",
    "TaskTimeout",
    "UnknownRebind",
    "Unordered",
    "graph",
    "linear",
    "repeat",
    "task",
    "unordered",
]
