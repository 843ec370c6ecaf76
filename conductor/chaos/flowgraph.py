"""Which tasks of a flow start only after another task's success was saved.

The engine saves a task's SUCCESS before (or in the same transaction as) the RUNNING state of
any task depending on it, so the start of a dependent proves the success was saved: from then
on the task must never start again (same attempt). Read from the compiled flow's edges; an edge
into or out of a retry container stands for every task inside it. Repeat bodies (copies made at
run time) are left out: their tasks get no such proof, only the other checks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from conductor.engine.graph import AtomKind, AtomSpec, CompiledFlow
from conductor.registry import Registry


def successors(flow: CompiledFlow) -> dict[str, frozenset[str]]:
    """Per task name, every task that can start only after it succeeded (transitively)."""
    atoms = flow.graph.atoms

    def tasks_in(name: str) -> set[str]:
        atom = atoms[name]
        if atom.kind is AtomKind.TASK:
            return {name}
        if atom.kind is AtomKind.RETRY:
            return {task for child in atom.children if child in atoms
                    for task in tasks_in(child)}
        return set()

    def direct(atom: AtomSpec) -> set[str]:
        """Tasks after `atom` or after any container holding it."""
        found: set[str] = set()
        current: AtomSpec | None = atom
        while current is not None:
            for succ in current.succs:
                if succ in atoms:
                    found |= tasks_in(succ)
            current = atoms.get(current.parent) if current.parent else None
        return found

    step = {name: direct(atom) for name, atom in atoms.items() if atom.kind is AtomKind.TASK}
    closure: dict[str, frozenset[str]] = {}
    for name, after in step.items():
        seen: set[str] = set()
        todo = list(after)
        while todo:
            task = todo.pop()
            if task not in seen:
                seen.add(task)
                todo.extend(step.get(task, ()))
        closure[name] = frozenset(seen)
    return closure


def flow_successors(flows: tuple[str, ...], flow: str, inputs: Mapping[str, Any]
                    ) -> dict[str, frozenset[str]]:
    """`successors` of a flow from the given flow sources (as `conductor run --flows`)."""
    return successors(Registry.from_specs(flows).compile(flow, inputs))
