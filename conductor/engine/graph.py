"""The compiled form of a flow: an immutable graph of atoms, built once and reused.

Atoms are tasks and controllers. Controllers are containers: a `retry` atom owns a sub-flow that
it reverts and runs again; a `repeat` atom owns one copy of its body per item (made when it
starts). Edges join siblings only (atoms with the same parent): an edge into or out of a
container stands for every atom inside it. Keys are tuples ordering every atom consistently
with the edges (a dependent's key is always greater); reverse key order is the revert order.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from conductor.flow.retry import Retry
from conductor.flow.task import Task


class AtomKind(str, enum.Enum):
    """What an atom is. Saved as `AtomRecord.kind`: the values never change."""

    TASK = "task"
    RETRY = "retry"  # a retry controller: owns a sub-flow it reverts and runs again
    REPEAT = "repeat"  # a repeat controller: owns one copy of its body per item

    def __str__(self) -> str:
        return self.value

    @property
    def container(self) -> bool:
        """Whether atoms of this kind own other atoms (controllers) rather than call a task."""
        return self is not AtomKind.TASK


class SourceKind(str, enum.Enum):
    """Where a value comes from (the values appear in `describe()`)."""

    INPUT = "input"  # the flow input `name`
    ATOM = "atom"  # value `data` of atom `name`'s result
    ITEM = "item"  # the current repeat item
    OUTER = "outer"  # value `name` from outside a repeat body
    VALUE = "value"  # the literal `value`
    DEFAULT = "default"  # leave the argument out: it has a default

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Source:
    """Where a value comes from: see SourceKind."""

    kind: SourceKind
    name: str = ""
    data: str = ""
    value: Any = None

    def describe(self) -> str:
        if self.kind is SourceKind.ATOM:
            return f"atom:{self.name}.{self.data}"
        if self.kind in (SourceKind.INPUT, SourceKind.OUTER):
            return f"{self.kind.value}:{self.name}"
        if self.kind is SourceKind.VALUE:
            return f"value:{self.value!r}"
        return str(self.kind.value)


@dataclass(frozen=True, eq=False)
class AtomSpec:
    """One atom of a compiled flow (a task, a retry controller or a repeat controller)."""

    name: str
    kind: AtomKind
    key: tuple[int, ...]
    parent: str | None
    preds: tuple[str, ...]
    succs: tuple[str, ...]
    task: Task | None = None
    args: tuple[tuple[str, Source], ...] = ()
    provides: tuple[str, ...] = ()
    unpack: bool = False
    retry: Retry | None = None
    timeout: float | None = None
    children: tuple[str, ...] = ()
    over: Source | None = None
    item: str = ""
    body: Graph | None = None
    outer: tuple[tuple[str, Source], ...] = ()
    collect: tuple[tuple[str, Source], ...] = ()

    def describe(self) -> dict[str, Any]:
        """Plain data for comparing graphs (e.g. Python vs YAML) and for display."""
        out: dict[str, Any] = {
            "kind": self.kind.value,
            "key": list(self.key),
            "parent": self.parent,
            "preds": sorted(self.preds),
            "retry": None if self.retry is None else self.retry.describe(),
        }
        if self.kind is AtomKind.TASK:
            assert self.task is not None
            out.update(
                code=self.task.code_name,
                revert=self.task.has_revert,
                args={arg: source.describe() for arg, source in self.args},
                provides=list(self.provides),
                unpack=self.unpack,
                timeout=self.timeout,
            )
        elif self.kind is AtomKind.RETRY:
            out["children"] = sorted(self.children)
        else:
            assert self.body is not None and self.over is not None
            out.update(
                over=self.over.describe(),
                item=self.item,
                provides=list(self.provides),
                outer={name: source.describe() for name, source in self.outer},
                collect={name: source.describe() for name, source in self.collect},
                body=self.body.describe(),
            )
        return out


@dataclass(frozen=True)
class Graph:
    """Atoms keyed by name, in key order; `roots` are the top-level atoms."""

    atoms: Mapping[str, AtomSpec]
    roots: tuple[str, ...]

    def describe(self) -> dict[str, Any]:
        return {name: atom.describe() for name, atom in self.atoms.items()}


@dataclass(frozen=True)
class CompiledFlow:
    """A flow compiled for one set of input names.

    `required_inputs` must be given; `optional_inputs` are used when given. `outputs` are the
    declared outputs (None: the result is every provided value), found at `output_sources`.
    """

    name: str
    graph: Graph
    required_inputs: tuple[str, ...]
    optional_inputs: tuple[str, ...]
    outputs: tuple[str, ...] | None
    output_sources: tuple[tuple[str, Source], ...]

    @property
    def atoms(self) -> Mapping[str, AtomSpec]:
        return self.graph.atoms

    def tasks(self) -> list[Task]:
        """Every task of the flow, repeat bodies included."""
        found: list[Task] = []

        def walk(graph: Graph) -> None:
            for atom in graph.atoms.values():
                if atom.task is not None:
                    found.append(atom.task)
                if atom.body is not None:
                    walk(atom.body)

        walk(self.graph)
        return found

    def describe(self) -> dict[str, Any]:
        """The whole graph as plain data: equal for equal graphs."""
        return {
            "atoms": self.graph.describe(),
            "required_inputs": sorted(self.required_inputs),
            "optional_inputs": sorted(self.optional_inputs),
            "outputs": None if self.outputs is None else list(self.outputs),
            "output_sources": {n: s.describe() for n, s in self.output_sources},
        }
