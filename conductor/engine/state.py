"""The state of one execution as the core keeps it: specs, records, counters, and lookups.

Split from core.py: this module holds the data and the questions asked of it (values of
sources, scopes, first attempts); core.py and compensation.py hold the rules.
"""

from __future__ import annotations

import heapq
import random as random_module
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from conductor.engine.graph import REPEAT, RETRY, AtomSpec, CompiledFlow, Source
from conductor.engine.instances import instantiate
from persistence.records import AtomRecord, AtomState, ExecutionChange, Failure

DELEGATED = "delegated"
FIRST_ATTEMPTS = "first_attempts"


@dataclass
class Revert:
    """A scope being reverted: the whole flow (scope None, to fail) or a retry controller's
    sub-flow (to run it again)."""

    retry: bool
    queue: list[str] | None = None  # atoms still to revert, ascending key (pop from the end)
    current: str | None = None  # the atom whose revert is in flight


@dataclass
class Counters:
    """What makes the core incremental: per-atom unmet-predecessor counts, per-container open
    children, the ready queue, delayed retries (a heap on not_before), attempts in flight."""

    unmet: dict[str, int] = field(default_factory=dict)
    open_children: dict[str | None, int] = field(default_factory=dict)
    ready: deque[str] = field(default_factory=deque)
    delayed: list[tuple[float, tuple[int, ...], str]] = field(default_factory=list)
    in_flight: dict[str, str] = field(default_factory=dict)
    rerun: set[str] = field(default_factory=set)
    reverting: dict[str | None, Revert] = field(default_factory=dict)


class ExecutionView:
    """Specs and records of one execution, with the counters the rules update."""

    def __init__(
        self,
        flow: CompiledFlow,
        inputs: Mapping[str, Any],
        atoms: Mapping[str, AtomRecord],
        failure: Failure | None,
        random: Callable[[], float] = random_module.random,
    ) -> None:
        self.flow = flow
        self.inputs = dict(inputs)
        self.random = random
        self.specs: dict[str, AtomSpec] = dict(flow.atoms)
        self.records: dict[str, AtomRecord] = {n: replace(r) for n, r in atoms.items()}
        self.failure = failure
        self.revert_failed = any(r.state is AtomState.REVERT_FAILURE for r in atoms.values())
        self.final: ExecutionChange | None = None
        self._execution: ExecutionChange | None = None
        self._s = Counters()

    def _record(self, name: str, kind: str) -> AtomRecord:
        rec = self.records.get(name)
        if rec is None:
            rec = AtomRecord(name=name, kind=kind)
            self.records[name] = rec
        return rec

    def _children(self, spec: AtomSpec, *, expand: bool) -> list[str]:
        if spec.kind == RETRY:
            if expand:
                for child in spec.children:
                    self._record(child, self.specs[child].kind)
            return list(spec.children)
        items = self._value(spec.over) if spec.over is not None else None
        if not isinstance(items, list):
            return []
        names = []
        for index, item in enumerate(items):
            for atom in instantiate(spec, index, item):
                if expand:
                    self.specs[atom.name] = atom
                    self._record(atom.name, atom.kind)
                if atom.parent == spec.name:
                    names.append(atom.name)
        return names

    def _value(self, source: Source) -> Any:
        if source.kind == "input":
            return self.inputs.get(source.name)
        if source.kind == "value":
            return source.value
        if source.kind == "atom":
            provider = self.specs[source.name]
            result = self.records[source.name].result
            if not provider.unpack:
                return result
            if isinstance(result, dict):
                return result[source.data]
            return result[provider.provides.index(source.data)]
        raise ValueError(f"no value for source {source}")

    def _kwargs(self, spec: AtomSpec) -> dict[str, Any]:
        out = {}
        for arg, source in spec.args:
            if source.kind == "default" or (
                source.kind == "input" and source.name not in self.inputs
            ):
                continue
            out[arg] = self._value(source)
        return out

    def flow_result(self) -> Any:
        """The declared outputs, or every value the flow's tasks provided (later wins)."""
        if self.flow.outputs is not None:
            return {name: self._value(src) for name, src in self.flow.output_sources}
        values: dict[str, Any] = {}
        for name, spec in self.flow.atoms.items():
            if spec.provides and self.records[name].state is AtomState.SUCCESS:
                for data in spec.provides:
                    values[data] = self._value(Source("atom", name, data))
        return values

    def _in_scope(self, name: str, scope: str | None) -> bool:
        if scope is None:
            return True
        parent = self.specs[name].parent
        while parent is not None:
            if parent == scope:
                return True
            parent = self.specs[parent].parent
        return False

    def _frozen(self, name: str) -> bool:
        reverting = self._s.reverting
        if not reverting:
            return False
        if None in reverting or self.revert_failed:
            return True
        parent = self.specs[name].parent
        while parent is not None:
            if parent in reverting:
                return True
            parent = self.specs[parent].parent
        return False

    def _inside_repeat(self, name: str, scope: str) -> bool:
        """Whether `name` is part of a repeat's copy within `scope` (made when it starts)."""
        parent = self.specs[name].parent
        while parent is not None and parent != scope:
            if self.specs[parent].kind == REPEAT:
                return True
            parent = self.specs[parent].parent
        return False

    def first_attempt(self, name: str) -> int:
        """The attempt number `name` started from in the current round of its enclosing
        sub-flow retries (1 outside any): attempts used = attempt - first_attempt + 1."""
        parent = self.specs[name].parent
        while parent is not None:
            spec = self.specs[parent]
            if spec.kind == RETRY:
                saved = self.records[parent].result
                if isinstance(saved, dict) and name in saved.get(FIRST_ATTEMPTS, {}):
                    return int(saved[FIRST_ATTEMPTS][name])
            parent = spec.parent
        return 1

    def _enqueue(self, name: str) -> None:
        rec = self.records[name]
        if rec.not_before is not None:
            heapq.heappush(self._s.delayed, (rec.not_before, self.specs[name].key, name))
        else:
            self._s.ready.append(name)
