"""The operator's registry of flows and actions: the only flows a conductor will run.

Filled from Python modules (by module name or file path) and YAML workbooks that the OPERATOR
names (e.g. `conductor run --flows myapp.flows --flows flows.yaml`); a job only names a
registered flow (and optionally a version). Nothing is ever imported from job data.

A Python module contributes through a `register(registry)` function, and/or module-level
objects decorated with `@registered_flow(...)` (flow factories) and `@action(...)` (tasks
that YAML workbooks may call by name).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from conductor.engine.compiler import compile_flow
from conductor.engine.dispatch import register_flow_file
from conductor.engine.graph import CompiledFlow
from conductor.flow.errors import FlowError
from conductor.flow.patterns import Flow
from conductor.flow.task import FunctionTask, Task
from conductor.workbook import load_workbook

FlowFactory = Callable[[dict[str, Any]], "Task | Flow"]
_FLOW_MARK = "__conductor_flow__"
_ACTION_MARK = "__conductor_action__"
_CACHE_SIZE = 256


class RegistryError(Exception):
    """A flows module or workbook could not be loaded (the message says which and why)."""


class UnknownFlow(RegistryError, LookupError):
    """No registered flow has that name (and version)."""


class UnknownAction(RegistryError, LookupError):
    """No registered action has that name."""


class InvalidInputs(RegistryError, ValueError):
    """A job's inputs do not fit the flow it names (missing, or rejected by the factory)."""


@dataclass(frozen=True)
class RegisteredFlow:
    """A flow the operator allows: a fixed flow, or a factory building one from the inputs."""

    name: str
    version: str
    build: FlowFactory
    description: str = ""
    source: str = ""


def registered_flow(name: str, *, version: str = "1", description: str = ""
                    ) -> Callable[[FlowFactory], FlowFactory]:
    """Mark a module-level flow factory `build(inputs) -> Flow` for registration."""
    def mark(factory: FlowFactory) -> FlowFactory:
        setattr(factory, _FLOW_MARK, (name, version, description))
        return factory
    return mark


A = TypeVar("A")


def action(name: str) -> Callable[[A], A]:
    """Mark a module-level function or Task as an action that workbooks call by `name`."""
    def mark(target: A) -> A:
        setattr(target, _ACTION_MARK, name)
        return target
    return mark


class Registry:
    """Flows and actions by name; compiles (and caches) a flow for a job's inputs."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._flows: dict[str, dict[str, RegisteredFlow]] = {}
        self._actions: dict[str, Task] = {}
        self._compiled: OrderedDict[tuple[str, str, str], CompiledFlow] = OrderedDict()

    # -- registering ----------------------------------------------------------------------
    def add_flow(self, name: str, flow: Task | Flow | FlowFactory, *, version: str = "1",
                 description: str = "", source: str = "") -> RegisteredFlow:
        """Register a fixed flow or a factory `build(inputs) -> Flow` under (name, version)."""
        if not isinstance(name, str) or not name:
            raise RegistryError(f"a flow name must be a non-empty string, not {name!r}")
        build: FlowFactory
        if isinstance(flow, (Task, Flow)):
            fixed = flow

            def build_fixed(inputs: dict[str, Any]) -> Task | Flow:
                return fixed

            build = build_fixed
        elif callable(flow):
            build = flow
        else:
            raise RegistryError(f"flow {name!r}: {flow!r} is neither a flow nor a factory")
        entry = RegisteredFlow(name, str(version), build, description, source)
        with self._lock:
            versions = self._flows.setdefault(name, {})
            if entry.version in versions:
                raise RegistryError(
                    f"flow {name!r} version {entry.version!r} is registered twice "
                    f"({versions[entry.version].source or 'earlier'} and {source or 'now'})"
                )
            versions[entry.version] = entry
        return entry

    def add_action(self, name: str, target: Task | Callable[..., Any]) -> Task:
        """Register a task (an instance, a Task subclass, or a function made a task) that
        workbooks may call by name."""
        made: Task
        if isinstance(target, Task):
            made = target
        elif isinstance(target, type) and issubclass(target, Task):
            made = target()
        else:
            made = FunctionTask(target)
        with self._lock:
            if name in self._actions and self._actions[name] is not made:
                raise RegistryError(f"action {name!r} is registered twice")
            self._actions[name] = made
        return made

    # -- looking up ---------------------------------------------------------------------
    def action(self, name: str) -> Task:
        try:
            return self._actions[name]
        except KeyError:
            known = ", ".join(sorted(self._actions)) or "none"
            raise UnknownAction(f"no action named {name!r} (registered: {known})") from None

    def get(self, name: str, version: str | None = None) -> RegisteredFlow:
        """The flow registered as `name` (the last registered version if `version` is None)."""
        versions = self._flows.get(name)
        if not versions:
            known = ", ".join(sorted(self._flows)) or "none"
            raise UnknownFlow(f"no flow named {name!r} is registered (registered: {known})")
        if version is None:
            return list(versions.values())[-1]
        try:
            return versions[str(version)]
        except KeyError:
            raise UnknownFlow(
                f"flow {name!r} has no version {version!r} (registered: {sorted(versions)})"
            ) from None

    def flows(self) -> list[RegisteredFlow]:
        return [entry for versions in self._flows.values() for entry in versions.values()]

    def actions(self) -> list[str]:
        return sorted(self._actions)

    def compile(self, name: str, inputs: Mapping[str, Any], version: str | None = None
                ) -> CompiledFlow:
        """The compiled flow for a job; raises UnknownFlow or InvalidInputs. Cached."""
        entry = self.get(name, version)
        try:
            key = (name, entry.version, json.dumps(inputs, sort_keys=True))
        except (TypeError, ValueError) as exc:
            raise InvalidInputs(f"inputs of flow {name!r} are not JSON: {exc}") from None
        with self._lock:
            found = self._compiled.get(key)
            if found is not None:
                self._compiled.move_to_end(key)
                return found
        try:
            flow = entry.build(dict(inputs))
        except KeyError as exc:
            raise InvalidInputs(f"flow {name!r} needs input {exc} (given: {sorted(inputs)})"
                                ) from exc
        except (TypeError, ValueError) as exc:
            raise InvalidInputs(f"flow {name!r} rejected its inputs: {exc}") from exc
        if not isinstance(flow, (Task, Flow)):
            raise RegistryError(f"flow {name!r}: its factory returned {flow!r}, not a flow")
        declared = set(flow.inputs or ()) if isinstance(flow, Flow) else set()
        missing = sorted(declared - set(inputs))
        if missing:
            raise InvalidInputs(f"flow {name!r} needs inputs {missing} (given: {sorted(inputs)})")
        try:
            compiled = compile_flow(flow, inputs, name=name)
        except FlowError as exc:
            raise InvalidInputs(f"flow {name!r} cannot run with these inputs: {exc}") from exc
        with self._lock:
            self._compiled[key] = compiled
            while len(self._compiled) > _CACHE_SIZE:
                self._compiled.popitem(last=False)
        return compiled

    # -- loading ------------------------------------------------------------------------
    def load(self, spec: str) -> None:
        """Load a YAML workbook (.yaml/.yml), a Python file (.py) or a module by name."""
        if spec.endswith((".yaml", ".yml")):
            self.load_workbook(spec)
        elif spec.endswith(".py") or "/" in spec:
            self.load_file(spec)
        else:
            self.load_module(spec)

    def load_all(self, specs: Iterable[str]) -> None:
        """Load Python sources first, then workbooks (which call their actions)."""
        ordered = sorted(specs, key=lambda s: s.endswith((".yaml", ".yml")))
        for spec in ordered:
            self.load(spec)

    def load_module(self, name: str) -> None:
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            raise RegistryError(f"flows module {name!r} cannot be imported: {exc}") from exc
        self._take(module, name)

    def load_file(self, path: str) -> None:
        file = Path(path).resolve()
        if not file.is_file():
            raise RegistryError(f"flows file {path!r} does not exist")
        digest = hashlib.sha1(str(file).encode()).hexdigest()[:10]
        module_name = f"conductor_flows_{file.stem}_{digest}"
        spec = importlib.util.spec_from_file_location(module_name, file)
        if spec is None or spec.loader is None:
            raise RegistryError(f"flows file {path!r} is not a Python module")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            del sys.modules[module_name]
            raise RegistryError(f"flows file {path!r} failed to load: {exc!r}") from exc
        register_flow_file(module_name, str(file))  # process workers load it by this name
        self._take(module, str(file))

    def load_workbook(self, path: str) -> None:
        for entry in load_workbook(path, self):
            self.add_flow(entry.name, entry.flow, version=entry.version,
                          description=entry.description, source=entry.source)

    def _take(self, module: Any, source: str) -> None:
        for value in list(vars(module).values()):
            action_name = getattr(value, _ACTION_MARK, None)
            if isinstance(action_name, str):
                self.add_action(action_name, value)
            flow_mark = getattr(value, _FLOW_MARK, None)
            if isinstance(flow_mark, tuple):
                name, version, description = flow_mark
                self.add_flow(name, value, version=version, description=description,
                              source=source)
        register = getattr(module, "register", None)
        if callable(register):
            register(self)

    @classmethod
    def from_specs(cls, specs: Iterable[str]) -> Registry:
        registry = cls()
        registry.load_all(specs)
        return registry
