"""The atoms of one execution: specs and records, the values they provide, and the one place
their states change.

Specs start as the compiled flow's; a repeat adds its copies when it starts (and a new round
of an enclosing sub-flow drops them). Records are the core's own copies of the saved ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from conductor.engine.graph import AtomKind, AtomSpec, CompiledFlow, Source, SourceKind
from conductor.engine.instances import instantiate
from conductor.engine.transitions import check_atom
from persistence.records import AtomRecord, AtomState, Intention

FIRST_ATTEMPTS = "first_attempts"
"""Key of a retry controller's saved result: per atom inside it, the attempt its round began
with (so each round gets its own retry budget)."""


class Atoms:
    """Specs and records of one execution's atoms, and the questions asked of them."""

    def __init__(self, flow: CompiledFlow, inputs: Mapping[str, Any],
                 records: Mapping[str, AtomRecord]) -> None:
        self.flow = flow
        self.inputs = dict(inputs)
        self.specs: dict[str, AtomSpec] = dict(flow.atoms)
        self.records: dict[str, AtomRecord] = {n: replace(r) for n, r in records.items()}

    # -- state changes: every one goes through move (checked by conductor.engine.transitions)
    def move(self, rec: AtomRecord, to: AtomState, intention: Intention | None = None
             ) -> AtomRecord:
        """Put `rec` in state `to` (and `intention`, if given): IllegalTransition if the
        tables do not allow it."""
        check_atom(rec.name, self.specs[rec.name].kind, rec.state, to)
        rec.state = to
        if intention is not None:
            rec.intention = intention
        return rec

    def new_round(self, name: str) -> AtomRecord:
        """A fresh PENDING record of `name` for a new round of its sub-flow: one attempt past
        the last it used, if it ran."""
        old = self.records[name]
        check_atom(name, self.specs[name].kind, old.state, AtomState.PENDING)
        ran = old.state is not AtomState.PENDING and old.attempt > 0
        new = AtomRecord(name=name, kind=old.kind,
                         attempt=old.attempt + 1 if ran else old.attempt)
        self.records[name] = new
        return new

    def state(self, name: str) -> AtomState:
        """`name`'s state (PENDING for an atom inside a container that never started: it has
        no record)."""
        rec = self.records.get(name)
        return AtomState.PENDING if rec is None else rec.state

    def record(self, name: str) -> AtomRecord:
        """`name`'s record; a PENDING one if it has none yet."""
        rec = self.records.get(name)
        if rec is None:
            rec = AtomRecord(name=name, kind=self.specs[name].kind.value)
            self.records[name] = rec
        return rec

    # -- structure -----------------------------------------------------------------------
    def children(self, spec: AtomSpec, *, expand: bool) -> list[str]:
        """A container's children; with `expand`, a repeat's copies are made (from its saved
        `over` value) and every child gets a record."""
        if spec.kind is AtomKind.RETRY:
            if expand:
                for child in spec.children:
                    self.record(child)
            return list(spec.children)
        items = self.value(spec.over) if spec.over is not None else None
        if not isinstance(items, list):
            return []
        names = []
        for index, item in enumerate(items):
            for atom in instantiate(spec, index, item):
                if expand:
                    self.specs[atom.name] = atom
                    self.record(atom.name)
                if atom.parent == spec.name:
                    names.append(atom.name)
        return names

    def in_scope(self, name: str, scope: str | None) -> bool:
        """Whether `name` is inside container `scope` (everything is inside None, the flow)."""
        if scope is None:
            return True
        parent = self.specs[name].parent
        while parent is not None:
            if parent == scope:
                return True
            parent = self.specs[parent].parent
        return False

    def inside_repeat(self, name: str, scope: str) -> bool:
        """Whether `name` is part of a repeat's copy within `scope` (made when it starts)."""
        parent = self.specs[name].parent
        while parent is not None and parent != scope:
            if self.specs[parent].kind is AtomKind.REPEAT:
                return True
            parent = self.specs[parent].parent
        return False

    def first_attempt(self, name: str) -> int:
        """The attempt number `name` started from in the current round of its enclosing
        sub-flow retries (1 outside any): attempts used = attempt - first_attempt + 1."""
        parent = self.specs[name].parent
        while parent is not None:
            spec = self.specs[parent]
            if spec.kind is AtomKind.RETRY:
                saved = self.records[parent].result
                if isinstance(saved, dict) and name in saved.get(FIRST_ATTEMPTS, {}):
                    return int(saved[FIRST_ATTEMPTS][name])
            parent = spec.parent
        return 1

    # -- values --------------------------------------------------------------------------
    def value(self, source: Source) -> Any:
        if source.kind is SourceKind.INPUT:
            return self.inputs.get(source.name)
        if source.kind is SourceKind.VALUE:
            return source.value
        if source.kind is SourceKind.ATOM:
            provider = self.specs[source.name]
            result = self.records[source.name].result
            if not provider.unpack:
                return result
            if isinstance(result, dict):
                return result[source.data]
            return result[provider.provides.index(source.data)]
        raise ValueError(f"no value for source {source}")

    def kwargs(self, spec: AtomSpec) -> dict[str, Any]:
        """The arguments of `spec`'s task, from inputs and saved results."""
        out = {}
        for arg, source in spec.args:
            if source.kind is SourceKind.DEFAULT or (
                source.kind is SourceKind.INPUT and source.name not in self.inputs
            ):
                continue
            out[arg] = self.value(source)
        return out

    def flow_result(self) -> Any:
        """The declared outputs, or every value the flow's tasks provided (later wins)."""
        if self.flow.outputs is not None:
            return {name: self.value(src) for name, src in self.flow.output_sources}
        values: dict[str, Any] = {}
        for name, spec in self.flow.atoms.items():
            if spec.provides and self.records[name].state is AtomState.SUCCESS:
                for data in spec.provides:
                    values[data] = self.value(Source(SourceKind.ATOM, name, data))
        return values
