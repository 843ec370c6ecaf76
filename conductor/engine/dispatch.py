"""Where task attempts run: the dispatch hook, with local thread and process implementations.

A Dispatcher takes an Invocation and a TaskContext and returns a future of the call's return
value; remote workers plug in here as another implementation. A thread cannot be
killed: an attempt that overran its timeout keeps its thread until it returns, and its late
result is discarded by the runner.

Worker processes ('spawn') import what they run by name. A module the registry loaded from a
`--flows FILE.py` has a generated name that exists only in the parent, so the registry records
it here (`register_flow_file`) and each call sent to a worker carries those (name, path) pairs:
the worker loads such a module from its file, under the same name, when a task of it arrives.
Only files the operator's registry loaded are ever loaded this way (nothing comes from job
data).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import multiprocessing
import sys
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import Executor, Future
from multiprocessing.reduction import ForkingPickler
from types import ModuleType
from typing import Any, Protocol

import futurist

from conductor.engine.decisions import Action, Invocation
from conductor.engine.graph import CompiledFlow
from conductor.flow.context import TaskContext
from conductor.flow.errors import FlowError
from conductor.flow.task import Task


class TaskNotSendable(FlowError):
    """A task cannot be sent to a worker process (e.g. a lambda or a nested function)."""


_flow_files: dict[str, str] = {}
_flow_files_lock = threading.Lock()


def register_flow_file(module_name: str, path: str) -> None:
    """The registry loaded the operator's flows file `path` as module `module_name`: worker
    processes may load it from that file under that name."""
    with _flow_files_lock:
        _flow_files[module_name] = path


def flow_files() -> dict[str, str]:
    """Module name -> path of every flows file the registries of this process loaded."""
    with _flow_files_lock:
        return dict(_flow_files)


class _FlowFileFinder(importlib.abc.MetaPathFinder):
    """In a worker process: finds the registry's flows-file modules by their generated names."""

    def __init__(self) -> None:
        self.paths: dict[str, str] = {}

    def find_spec(self, fullname: str, path: Sequence[str] | None = None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        file = self.paths.get(fullname)
        return None if file is None else importlib.util.spec_from_file_location(fullname, file)


_finder: _FlowFileFinder | None = None


def _worker_call(name: str, files: Mapping[str, str], payload: bytes) -> Any:
    """Run one attempt in a worker process: make the flows files importable, then unpickle
    the call here (an import error fails this attempt, not the whole pool)."""
    global _finder
    if _finder is None:
        _finder = _FlowFileFinder()
        sys.meta_path.append(_finder)
    _finder.paths.update(files)
    try:
        task, action, kwargs, result, context = ForkingPickler.loads(payload)
    except ImportError as exc:
        raise TaskNotSendable(
            f"task {name!r} cannot be loaded in a worker process: {exc}; its module must be "
            "importable by name there (a module on the Python path, e.g. --flows "
            "package.module, or a --flows FILE.py loaded by the registry)"
        ) from None
    return call_task(task, action, kwargs, result, context)


class Dispatcher(Protocol):
    def check(self, flow: CompiledFlow) -> None:
        """Raise a FlowError naming any task this dispatcher cannot run (before anything runs)."""
        ...

    def submit(self, invocation: Invocation, context: TaskContext) -> Future[Any]:
        """Start the call; the future gives its return value or its exception."""
        ...

    def shutdown(self, wait: bool) -> None:
        ...


def call_task(task: Task, action: Action, kwargs: dict[str, Any], result: Any,
              context: TaskContext) -> Any:
    """Run one attempt (module level, so a process pool can run it)."""
    if action is Action.EXECUTE:
        return task.call_execute(kwargs, context)
    task.call_revert(kwargs, result, context)
    return None


class LocalDispatcher:
    """Runs attempts on a futurist executor (threads by default)."""

    def __init__(self, executor: Executor | None = None,
                 max_workers: int = 16) -> None:
        self.executor: Executor = executor or futurist.ThreadPoolExecutor(
            max_workers=max_workers
        )

    def check(self, flow: CompiledFlow) -> None:
        pass

    def submit(self, invocation: Invocation, context: TaskContext) -> Future[Any]:
        future: Future[Any] = self.executor.submit(
            call_task, invocation.task, invocation.action, invocation.kwargs,
            invocation.result, context,
        )
        return future

    def shutdown(self, wait: bool) -> None:
        self.executor.shutdown(wait=wait)


class ProcessDispatcher(LocalDispatcher):
    """Runs attempts in worker processes (futurist.ProcessPoolExecutor, 'spawn' start method).

    Tasks, their arguments and results cross the process boundary, so tasks must be importable
    by name (module-level functions or classes): `check` names any that are not. Modules of
    `--flows FILE.py` files are loaded by the workers from the same files (see the module
    docstring).
    """

    def __init__(self, max_workers: int = 2, start_method: str = "spawn") -> None:
        super().__init__(futurist.ProcessPoolExecutor(
            max_workers=max_workers, mp_context=multiprocessing.get_context(start_method),
        ))

    def check(self, flow: CompiledFlow) -> None:
        for task in flow.tasks():
            try:
                ForkingPickler.dumps(task)
            except Exception as exc:
                raise TaskNotSendable(
                    f"task {task.name!r} cannot be sent to a worker process: {exc}"
                ) from None

    def submit(self, invocation: Invocation, context: TaskContext) -> Future[Any]:
        payload = bytes(ForkingPickler.dumps(
            (invocation.task, invocation.action, invocation.kwargs, invocation.result, context)
        ))
        future: Future[Any] = self.executor.submit(
            _worker_call, invocation.name, flow_files(), payload)
        return future
