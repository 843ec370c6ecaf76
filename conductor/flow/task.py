"""Tasks: the units of work of a flow, as decorated functions or classes with execute/revert.

A task's inputs are the parameters of its function (or of `execute`): each is looked up by name
among the flow's inputs and earlier tasks' results, unless `rebind` maps it to another name; a
parameter with a default is optional. A parameter named `context` (or annotated `TaskContext`)
receives the attempt's TaskContext instead. `provides` names the result: one name holds the whole
result; several names unpack a list/tuple (by position) or a dict (by key).
"""

from __future__ import annotations

import copy
import importlib
import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, overload

from conductor.flow.context import TaskContext
from conductor.flow.errors import InvalidTask, UnknownRebind
from conductor.flow.retry import Retry

_CONTEXT_PARAMETER = "context"
_RESERVED_REVERT_PARAMETERS = frozenset({"result", _CONTEXT_PARAMETER})


@dataclass(frozen=True)
class Argument:
    """One input of a task: the parameter, the data name it is filled from, and whether it may
    be left out (it has a default)."""

    parameter: str
    data: str
    optional: bool


def check_name(name: object, what: str) -> str:
    """Validate an atom or data name (non-empty text without brackets, which instances use)."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidTask(f"{what} must be a non-empty string, not {name!r}")
    if "[" in name or "]" in name:
        raise InvalidTask(f"{what} {name!r} may not contain '[' or ']' (reserved for repeats)")
    return name


def normalize_provides(
    provides: str | Sequence[str] | None, owner: str
) -> tuple[tuple[str, ...], bool]:
    """(names, unpack): a single name holds the whole result; a sequence unpacks it."""
    if provides is None:
        return (), False
    if isinstance(provides, str):
        return (check_name(provides, f"provides of {owner!r}"),), False
    names = tuple(check_name(item, f"provides of {owner!r}") for item in provides)
    if len(set(names)) != len(names):
        raise InvalidTask(f"task {owner!r} provides a name twice: {list(names)}")
    return names, True


def _is_context_parameter(parameter: inspect.Parameter) -> bool:
    annotation = parameter.annotation
    if annotation is TaskContext:
        return True
    if isinstance(annotation, str) and annotation.split(".")[-1] == "TaskContext":
        return True
    return parameter.name == _CONTEXT_PARAMETER


def _signature(func: Callable[..., Any], owner: str) -> list[inspect.Parameter]:
    try:
        parameters = list(inspect.signature(func).parameters.values())
    except (TypeError, ValueError) as exc:
        raise InvalidTask(f"task {owner!r}: cannot read the signature of {func!r}: {exc}") from None
    for parameter in parameters:
        if parameter.kind is inspect.Parameter.VAR_POSITIONAL:
            raise InvalidTask(
                f"task {owner!r}: *{parameter.name} is not supported; name every input"
            )
        if parameter.kind is inspect.Parameter.POSITIONAL_ONLY:
            raise InvalidTask(
                f"task {owner!r}: positional-only parameter {parameter.name!r} cannot be "
                "passed by name"
            )
    return [p for p in parameters if p.kind is not inspect.Parameter.VAR_KEYWORD]


class Task:
    """Base of every task. Subclass it with `execute(...)` and optionally `revert(...)`.

    `revert` receives any of the task's inputs it names, `result` (what execute returned) and
    `context`. Options: `name` (default: the class name), `provides`, `rebind`
    ({parameter: data name}), `retry` (a Retry), `timeout` (seconds per attempt).
    """

    def __init__(
        self,
        name: str | None = None,
        *,
        provides: str | Sequence[str] | None = None,
        rebind: Mapping[str, str] | None = None,
        retry: Retry | None = None,
        timeout: float | None = None,
    ) -> None:
        self.name = check_name(name if name is not None else type(self).__name__, "task name")
        self.provides, self.unpack = normalize_provides(provides, self.name)
        self.rebind = dict(rebind or {})
        if retry is not None and not isinstance(retry, Retry):
            raise InvalidTask(f"task {self.name!r}: retry must be a Retry, not {retry!r}")
        self.retry = retry
        if timeout is not None and (
            not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or timeout <= 0
        ):
            raise InvalidTask(f"task {self.name!r}: timeout must be a number > 0, not {timeout!r}")
        self.timeout = None if timeout is None else float(timeout)
        self._analyse()

    # -- what subclasses provide -------------------------------------------------------------
    def execute(self, **kwargs: Any) -> Any:
        raise NotImplementedError(f"task {self.name!r} has no execute()")

    def revert(self, **kwargs: Any) -> None:
        """Undo what execute did (compensation). The default does nothing."""

    def _execute_callable(self) -> Callable[..., Any]:
        return self.execute

    def _revert_callable(self) -> Callable[..., Any] | None:
        if type(self).revert is Task.revert:
            return None
        return self.revert

    # -- derived facts ---------------------------------------------------------------------
    def _analyse(self) -> None:
        parameters = _signature(self._execute_callable(), self.name)
        self.wants_context = any(_is_context_parameter(p) for p in parameters)
        names = [p.name for p in parameters if not _is_context_parameter(p)]
        unknown = sorted(set(self.rebind) - set(names))
        if unknown:
            raise UnknownRebind(
                f"task {self.name!r}: rebind names {unknown}, which are not parameters of the "
                f"task (its parameters: {names})"
            )
        for parameter, data in self.rebind.items():
            check_name(data, f"rebind target of {self.name!r}.{parameter}")
        self.arguments = tuple(
            Argument(p.name, self.rebind.get(p.name, p.name), p.default is not p.empty)
            for p in parameters
            if not _is_context_parameter(p)
        )
        revert = self._revert_callable()
        self.revert_parameters: tuple[str, ...] = ()
        if revert is not None:
            accepted = set(names) | _RESERVED_REVERT_PARAMETERS
            revert_parameters = _signature(revert, self.name)
            for p in revert_parameters:
                if p.name not in accepted and p.default is p.empty:
                    raise InvalidTask(
                        f"task {self.name!r}: revert parameter {p.name!r} is neither an input "
                        "of the task nor 'result' or 'context'"
                    )
            self.revert_parameters = tuple(
                p.name for p in revert_parameters if p.name in accepted
            )

    @property
    def has_revert(self) -> bool:
        return self._revert_callable() is not None

    @property
    def code_name(self) -> str:
        """Where the task's code lives (module.qualname), to compare and show graphs."""
        func = self._execute_callable()
        owner = getattr(func, "__self__", None)
        if owner is not None:
            kind = type(owner)
            return f"{kind.__module__}.{kind.__qualname__}"
        return f"{func.__module__}.{func.__qualname__}"

    def with_options(self, **options: Any) -> Task:
        """A copy with other options (name, provides, rebind, retry, timeout)."""
        clone = copy.copy(self)
        current: dict[str, Any] = {
            "name": self.name,
            "provides": (list(self.provides) if self.unpack else
                         (self.provides[0] if self.provides else None)),
            "rebind": self.rebind,
            "retry": self.retry,
            "timeout": self.timeout,
        }
        unknown = sorted(set(options) - set(current))
        if unknown:
            raise InvalidTask(f"task {self.name!r}: unknown options {unknown}")
        current.update(options)
        Task.__init__(clone, **current)
        return clone

    # -- calling -------------------------------------------------------------------------
    def call_execute(self, kwargs: dict[str, Any], context: TaskContext) -> Any:
        if self.wants_context:
            kwargs = {**kwargs, _CONTEXT_PARAMETER: context}
        return self._execute_callable()(**kwargs)

    def call_revert(self, kwargs: dict[str, Any], result: Any, context: TaskContext) -> None:
        revert = self._revert_callable()
        if revert is None:
            return
        offered = {**kwargs, "result": result, _CONTEXT_PARAMETER: context}
        revert(**{name: offered[name] for name in self.revert_parameters if name in offered})

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


def _resolve(module: str, qualname: str) -> Any:
    found: Any = importlib.import_module(module)
    for part in qualname.split("."):
        found = getattr(found, part)
    return found


def _importable(func: Callable[..., Any], task_name: str, role: str) -> tuple[str, str]:
    """(module, qualname) of a module-level function, or a clear error for a process pool."""
    module, qualname = func.__module__, func.__qualname__
    problem = None
    if "<lambda>" in qualname or "<locals>" in qualname:
        problem = "it is a lambda or a nested function"
    else:
        try:
            found = _resolve(module, qualname)
        except (ImportError, AttributeError):
            problem = f"{module}.{qualname} cannot be imported"
        else:
            if found is not func and getattr(found, "function", None) is not func:
                problem = f"{module}.{qualname} is not that function"
    if problem:
        raise TypeError(
            f"task {task_name!r} cannot be sent to a process: its {role} function {qualname!r} "
            f"must be importable by name ({problem})"
        )
    return module, qualname


def _rebuild_function_task(
    execute: tuple[str, str], revert: tuple[str, str] | None, options: dict[str, Any]
) -> FunctionTask:
    function = _resolve(*execute)
    function = getattr(function, "function", function)
    undo = None
    if revert is not None:
        undo = _resolve(*revert)
        undo = getattr(undo, "function", undo)
    return FunctionTask(function, revert=undo, **options)


class FunctionTask(Task):
    """A task made from a plain function (see `task`). Sent to process pools by reference."""

    def __init__(
        self,
        function: Callable[..., Any],
        name: str | None = None,
        *,
        revert: Callable[..., Any] | None = None,
        **options: Any,
    ) -> None:
        if not callable(function):
            raise InvalidTask(f"a task needs a callable, not {function!r}")
        self.function = function
        self._revert_function = revert
        Task.__init__(self, name if name is not None else function.__name__, **options)

    def _execute_callable(self) -> Callable[..., Any]:
        return self.function

    def _revert_callable(self) -> Callable[..., Any] | None:
        return self._revert_function

    def reverter(self, revert: Callable[..., Any]) -> Callable[..., Any]:
        """Decorator: declare the function that undoes this task; returns it unchanged."""
        self._revert_function = revert
        self._analyse()
        return revert

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the plain function (handy in unit tests of the task itself)."""
        return self.function(*args, **kwargs)

    def __reduce__(self) -> tuple[Any, ...]:
        execute = _importable(self.function, self.name, "execute")
        revert = (
            _importable(self._revert_function, self.name, "revert")
            if self._revert_function is not None else None
        )
        options = {
            "name": self.name,
            "provides": (list(self.provides) if self.unpack else
                         (self.provides[0] if self.provides else None)),
            "rebind": self.rebind,
            "retry": self.retry,
            "timeout": self.timeout,
        }
        return (_rebuild_function_task, (execute, revert, options))


F = TypeVar("F", bound=Callable[..., Any])


@overload
def task(function: Callable[..., Any], /) -> FunctionTask: ...


@overload
def task(
    *,
    name: str | None = None,
    provides: str | Sequence[str] | None = None,
    rebind: Mapping[str, str] | None = None,
    retry: Retry | None = None,
    timeout: float | None = None,
    revert: Callable[..., Any] | None = None,
) -> Callable[[Callable[..., Any]], FunctionTask]: ...


def task(
    function: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    provides: str | Sequence[str] | None = None,
    rebind: Mapping[str, str] | None = None,
    retry: Retry | None = None,
    timeout: float | None = None,
    revert: Callable[..., Any] | None = None,
) -> FunctionTask | Callable[[Callable[..., Any]], FunctionTask]:
    """Make a task of a function: `@task` or `@task(provides=..., retry=..., timeout=...)`."""

    def wrap(func: Callable[..., Any]) -> FunctionTask:
        return FunctionTask(
            func, name, revert=revert, provides=provides, rebind=rebind, retry=retry,
            timeout=timeout,
        )

    if function is not None:
        return wrap(function)
    return wrap
