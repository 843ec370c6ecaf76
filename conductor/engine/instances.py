"""Copies of a repeat body, one per item: plain atoms named `<repeat>[<index>]/<atom>`.

The copies are made when the repeat starts (from its `over` value, which comes from saved
inputs or saved results, so a resumed run makes the very same copies).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from conductor.engine.graph import AtomSpec, Source, SourceKind


def instance_prefix(repeat: str, index: int) -> str:
    return f"{repeat}[{index}]/"


def instantiate(repeat: AtomSpec, index: int, item: Any) -> list[AtomSpec]:
    """The atoms of the `index`-th copy of `repeat`'s body, seeing `item`."""
    assert repeat.body is not None
    prefix = instance_prefix(repeat.name, index)
    outer = dict(repeat.outer)

    def name(relative: str) -> str:
        return prefix + relative

    def source(found: Source) -> Source:
        if found.kind is SourceKind.ATOM:
            return Source(SourceKind.ATOM, name(found.name), found.data)
        if found.kind is SourceKind.ITEM:
            return Source(SourceKind.VALUE, value=item)
        if found.kind is SourceKind.OUTER:
            return outer.get(found.name, Source(SourceKind.DEFAULT))
        return found

    copies = []
    for atom in repeat.body.atoms.values():
        copies.append(replace(
            atom,
            name=name(atom.name),
            key=(*repeat.key, index, *atom.key),
            parent=name(atom.parent) if atom.parent is not None else repeat.name,
            preds=tuple(name(p) for p in atom.preds),
            succs=tuple(name(s) for s in atom.succs),
            children=tuple(name(c) for c in atom.children),
            args=tuple((arg, source(src)) for arg, src in atom.args),
            over=None if atom.over is None else source(atom.over),
            outer=tuple((data, source(src)) for data, src in atom.outer),
        ))
    return copies


def collect_sources(repeat: AtomSpec, index: int) -> list[tuple[str, Source]]:
    """Where the `index`-th copy's collected values are."""
    prefix = instance_prefix(repeat.name, index)
    return [
        (data, Source(SourceKind.ATOM, prefix + src.name, src.data)
         if src.kind is SourceKind.ATOM else src)
        for data, src in repeat.collect
    ]
