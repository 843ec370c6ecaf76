"""Errors of flow definitions (raised when a flow is built or compiled) and of task attempts."""

from __future__ import annotations

from collections.abc import Sequence


class FlowError(Exception):
    """Base class of every error about a flow's definition."""


class InvalidTask(FlowError):
    """A task cannot be built as declared (bad signature, bad provides, bad option)."""


class DuplicateName(FlowError):
    """Two atoms of one flow share a name."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(
            f"duplicate atom name {name!r}: every task and sub-flow needs its own name"
        )


class MissingInputs(FlowError):
    """Tasks require values that neither the flow's inputs nor an earlier task provide."""

    def __init__(self, missing: Sequence[tuple[str, str, str, str]]) -> None:
        self.missing = list(missing)  # (task, argument, data name, note)
        details = "; ".join(
            f"task {task!r} needs {name!r}"
            + (f" (for argument {arg!r})" if arg != name else "")
            + (f" ({note})" if note else "")
            for task, arg, name, note in self.missing
        )
        super().__init__(f"missing inputs: {details}")


class UnknownRebind(FlowError):
    """A rebind names an argument the task does not take."""


class AmbiguousProvider(FlowError):
    """Several tasks could provide a value to one task, and none of them comes last."""

    def __init__(self, task: str, name: str, providers: Sequence[str]) -> None:
        self.task = task
        self.name = name
        self.providers = list(providers)
        super().__init__(
            f"task {task!r} needs {name!r}, which is provided by several tasks with no order "
            f"between them: {', '.join(repr(p) for p in providers)}; rename one (provides=...) "
            "or rebind the argument"
        )


class CycleError(FlowError):
    """The dependencies between atoms form a cycle."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = list(names)
        super().__init__(f"dependency cycle between {', '.join(repr(n) for n in self.names)}")


class TaskTimeout(Exception):
    """A task attempt ran past its timeout; the attempt failed (its late result is discarded)."""


class Cancelled(Exception):
    """The execution was cancelled; completed tasks are reverted."""


class ResultMismatch(Exception):
    """A task's result does not match its `provides` (e.g. two names but not a 2-item list)."""
