"""Compile a flow (tasks and patterns) into a CompiledFlow, validating it on the way.

Data flow: a task's input is taken from the nearest earlier provider — a task that provides the
name and is ordered before it by the patterns (linear order, explicit graph edges); within a
graph, from any other task of the graph that provides it (an edge is added); otherwise from the
flow's inputs; otherwise, if the parameter has a default, it is left out. Several providers with
no order between them are an error, as are missing inputs, duplicate names and cycles.
Compilation is deterministic: the same flow and input names always give the same graph.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from conductor.engine.graph import (
    AtomKind,
    AtomSpec,
    CompiledFlow,
    Graph,
    Source,
    SourceKind,
)
from conductor.flow.errors import (
    AmbiguousProvider,
    CycleError,
    DuplicateName,
    FlowError,
    MissingInputs,
)
from conductor.flow.patterns import Flow, Linear, Repeat, Unordered
from conductor.flow.patterns import Graph as GraphFlow
from conductor.flow.retry import Retry
from conductor.flow.task import Task


def compile_flow(
    flow: Task | Flow, inputs: Iterable[str] | Mapping[str, object] = (), *, name: str = ""
) -> CompiledFlow:
    """Compile `flow` for the given input names (a mapping's keys are taken).

    The flow's declared inputs (if any) are added to the given names. Raises a FlowError
    subclass naming what is wrong: MissingInputs, DuplicateName, CycleError, AmbiguousProvider.
    """
    given = set(inputs.keys() if isinstance(inputs, Mapping) else inputs)
    declared = set(flow.inputs or ()) if isinstance(flow, Flow) else set()
    compiler = _Compiler(available=given | declared, item=None)
    graph = compiler.run(flow)
    if compiler.missing:
        raise MissingInputs(compiler.missing)
    outputs = flow.outputs if isinstance(flow, Flow) else None
    output_sources = tuple(
        (output, compiler.final_source(output)) for output in (outputs or ())
    )
    return CompiledFlow(
        name=name or (flow.name or "") if isinstance(flow, Flow) else name or flow.name,
        graph=graph,
        required_inputs=tuple(sorted(compiler.used_inputs)),
        optional_inputs=tuple(sorted(compiler.optional_inputs - compiler.used_inputs)),
        outputs=outputs,
        output_sources=output_sources,
    )


N = TypeVar("N", bound=Hashable)
_OVER = "<over>"
_OUTER = "<outer>"


@dataclass
class _Flat:
    """A task or repeat as the resolver sees it (retry sub-flows are transparent)."""

    index: int
    name: str
    node: Task | Repeat
    containers: tuple[str, ...]
    graphs: tuple[int, ...]
    requires: list[tuple[str, str, bool]] = field(default_factory=list)  # (arg, data, optional)
    provides: tuple[str, ...] = ()
    body: Graph | None = None
    outer_requires: list[tuple[str, bool]] = field(default_factory=list)
    collect: tuple[tuple[str, Source], ...] = ()


@dataclass
class _Container:
    name: str
    retry: Retry
    parent: str | None
    order: int


@dataclass
class _Fragment:
    entries: list[int]
    exits: list[int]


class _Compiler:
    def __init__(self, available: set[str], item: str | None) -> None:
        self.available = available
        self.item = item
        self.flats: list[_Flat] = []
        self.containers: dict[str, _Container] = {}
        self.names: set[str] = set()
        self.edges: set[tuple[int, int]] = set()
        self.graph_count = 0
        self.missing: list[tuple[str, str, str, str]] = []
        self.used_inputs: set[str] = set()
        self.optional_inputs: set[str] = set()
        self.outer: dict[str, bool] = {}  # data name -> optional (repeat bodies only)
        self.ancestors: list[int] = []

    # -- walking the pattern tree --------------------------------------------------------
    def _claim(self, name: str) -> None:
        if name in self.names:
            raise DuplicateName(name)
        self.names.add(name)

    def _walk(self, node: Task | Flow, containers: tuple[str, ...], graphs: tuple[int, ...]
              ) -> _Fragment:
        if isinstance(node, Task):
            return self._add_flat(node, containers, graphs)
        if isinstance(node, Repeat):
            return self._add_repeat(node, containers, graphs)
        if node.retry is not None:
            cname = node.name or f"{node.kind}-{len(self.containers) + 1}"
            self._claim(cname)
            self.containers[cname] = _Container(
                cname, node.retry, containers[-1] if containers else None,
                len(self.flats) + len(self.containers),
            )
            containers = (*containers, cname)
        if isinstance(node, Linear):
            return self._linear(node, containers, graphs)
        if isinstance(node, Unordered):
            parts = [self._walk(child, containers, graphs) for child in node.children]
            return _Fragment(
                [i for p in parts for i in p.entries], [i for p in parts for i in p.exits]
            )
        if isinstance(node, GraphFlow):
            return self._graph(node, containers, graphs)
        raise FlowError(f"unknown pattern {node!r}")

    def _add_flat(self, node: Task, containers: tuple[str, ...], graphs: tuple[int, ...]
                  ) -> _Fragment:
        self._claim(node.name)
        flat = _Flat(len(self.flats), node.name, node, containers, graphs)
        flat.requires = [(a.parameter, a.data, a.optional) for a in node.arguments]
        flat.provides = node.provides
        self.flats.append(flat)
        return _Fragment([flat.index], [flat.index])

    def _add_repeat(self, node: Repeat, containers: tuple[str, ...], graphs: tuple[int, ...]
                    ) -> _Fragment:
        assert node.name is not None
        self._claim(node.name)
        body = _Compiler(available=set(), item=node.item)
        template = body.run(node.body)
        flat = _Flat(len(self.flats), node.name, node, containers, graphs)
        flat.requires = [(_OVER, node.over, False)]
        flat.outer_requires = sorted(body.outer.items())
        flat.requires += [(_OUTER, data, optional) for data, optional in flat.outer_requires]
        flat.provides = (node.provides,)
        flat.body = template
        flat.collect = body.collected(node.name)
        self.flats.append(flat)
        return _Fragment([flat.index], [flat.index])

    def _linear(self, node: Linear, containers: tuple[str, ...], graphs: tuple[int, ...]
                ) -> _Fragment:
        parts = [self._walk(child, containers, graphs) for child in node.children]
        parts = [p for p in parts if p.entries]
        for before, after in itertools.pairwise(parts):
            self.edges.update((u, v) for u in before.exits for v in after.entries)
        if not parts:
            return _Fragment([], [])
        return _Fragment(parts[0].entries, parts[-1].exits)

    def _graph(self, node: GraphFlow, containers: tuple[str, ...], graphs: tuple[int, ...]
               ) -> _Fragment:
        self.graph_count += 1
        inner = (*graphs, self.graph_count)
        parts: dict[str, _Fragment] = {}
        order: list[_Fragment] = []
        for child in node.children:
            part = self._walk(child, containers, inner)
            order.append(part)
            if child.name:
                parts[child.name] = part
        has_in: set[str] = set()
        has_out: set[str] = set()
        for first, second in node.edges:
            for end in (first, second):
                if end not in parts:
                    raise FlowError(
                        f"graph{' ' + repr(node.name) if node.name else ''} edge "
                        f"({first!r}, {second!r}) names {end!r}, "
                        f"which is not a child of the graph (children: {sorted(parts)})"
                    )
            self.edges.update((u, v) for u in parts[first].exits for v in parts[second].entries)
            has_out.add(first)
            has_in.add(second)
        entries = [i for n, p in parts.items() if n not in has_in for i in p.entries]
        exits = [i for n, p in parts.items() if n not in has_out for i in p.exits]
        unnamed = [p for p in order if p not in parts.values()]
        entries += [i for p in unnamed for i in p.entries]
        exits += [i for p in unnamed for i in p.exits]
        return _Fragment(entries, exits)

    # -- resolution ----------------------------------------------------------------------
    def run(self, flow: Task | Flow) -> Graph:
        self._walk(flow, (), ())
        order = _topological(
            range(len(self.flats)), self.edges, lambda i: i,
            lambda left: [self.flats[i].name for i in left],
        )
        self.ancestors = [0] * len(self.flats)
        preds: dict[int, list[int]] = {i: [] for i in range(len(self.flats))}
        for u, v in self.edges:
            preds[v].append(u)
        for i in order:
            mask = 0
            for p in preds[i]:
                mask |= self.ancestors[p] | (1 << p)
            self.ancestors[i] = mask
        self.providers: dict[str, list[int]] = {}
        for flat in self.flats:
            for data in flat.provides:
                self.providers.setdefault(data, []).append(flat.index)
        sources: dict[int, list[tuple[str, Source]]] = {}
        outer_sources: dict[int, list[tuple[str, Source]]] = {}
        over_sources: dict[int, Source] = {}
        data_edges: set[tuple[int, int]] = set()
        for flat in self.flats:
            for arg, data, optional in flat.requires:
                source = self._resolve(flat, data, optional, arg, data_edges)
                if arg == _OVER:
                    over_sources[flat.index] = source
                elif arg == _OUTER:
                    outer_sources.setdefault(flat.index, []).append((data, source))
                else:
                    sources.setdefault(flat.index, []).append((arg, source))
        return self._build(sources, outer_sources, over_sources, self.edges | data_edges)

    def _is_ancestor(self, maybe: int, of: int) -> bool:
        return bool(self.ancestors[of] >> maybe & 1)

    def _resolve(self, flat: _Flat, data: str, optional: bool, arg: str,
                 data_edges: set[tuple[int, int]]) -> Source:
        candidates = [p for p in self.providers.get(data, ()) if p != flat.index]
        visible: list[int] = []
        later: list[str] = []
        for p in candidates:
            if self._is_ancestor(p, flat.index) or _common_prefix(
                self.flats[p].graphs, flat.graphs
            ):
                visible.append(p)
            else:
                later.append(self.flats[p].name)
        nearest = [p for p in visible if not any(
            q != p and self._is_ancestor(p, q) for q in visible
        )]
        if len(nearest) > 1:
            raise AmbiguousProvider(flat.name, data, [self.flats[p].name for p in nearest])
        if nearest:
            p = nearest[0]
            if not self._is_ancestor(p, flat.index):
                data_edges.add((p, flat.index))
            return Source(SourceKind.ATOM, self.flats[p].name, data)
        if self.item is not None and data == self.item:
            return Source(SourceKind.ITEM)
        if self.item is not None:
            self.outer[data] = self.outer.get(data, True) and optional
            return Source(SourceKind.OUTER, data)
        if data in self.available:
            (self.used_inputs if not optional else self.optional_inputs).add(data)
            return Source(SourceKind.INPUT, data)
        if optional:
            self.optional_inputs.add(data)
            return Source(SourceKind.DEFAULT)
        note = f"provided only by {later}, which do not run before it" if later else ""
        self.missing.append((flat.name, arg if not arg.startswith("<") else data, data, note))
        return Source(SourceKind.DEFAULT)

    def final_source(self, data: str) -> Source:
        """Where a value named `data` is found once the flow is done (for outputs)."""
        candidates = self.providers.get(data, [])
        nearest = [p for p in candidates if not any(
            q != p and self._is_ancestor(p, q) for q in candidates
        )]
        if len(nearest) > 1:
            raise AmbiguousProvider("<flow outputs>", data, [self.flats[p].name for p in nearest])
        if nearest:
            return Source(SourceKind.ATOM, self.flats[nearest[0]].name, data)
        if data in self.available:
            self.used_inputs.add(data)
            return Source(SourceKind.INPUT, data)
        raise MissingInputs([("<flow outputs>", data, data, "no task provides it")])

    def collected(self, repeat_name: str) -> tuple[tuple[str, Source], ...]:
        """The values one run of a repeat body yields: each provided name's final source."""
        provided = sorted({d for flat in self.flats for d in flat.provides})
        if not provided:
            raise FlowError(f"repeat {repeat_name!r}: its body provides nothing to collect")
        return tuple((data, self.final_source(data)) for data in provided)

    # -- the container tree ------------------------------------------------------------------
    def _build(self, sources: dict[int, list[tuple[str, Source]]],
               outer_sources: dict[int, list[tuple[str, Source]]],
               over_sources: dict[int, Source],
               edges: set[tuple[int, int]]) -> Graph:
        parent_of: dict[str, str | None] = {}
        order_of: dict[str, int] = {}
        for flat in self.flats:
            parent_of[flat.name] = flat.containers[-1] if flat.containers else None
            order_of[flat.name] = flat.index * 2
        for container in self.containers.values():
            parent_of[container.name] = container.parent
            order_of[container.name] = container.order * 2 - 1
        lifted: set[tuple[str, str]] = set()
        for u, v in edges:
            cu, cv = self.flats[u].containers, self.flats[v].containers
            k = len(_common_prefix(cu, cv))
            a = cu[k] if len(cu) > k else self.flats[u].name
            b = cv[k] if len(cv) > k else self.flats[v].name
            lifted.add((a, b))
        children: dict[str | None, list[str]] = {}
        for node, parent in parent_of.items():
            children.setdefault(parent, []).append(node)
        preds: dict[str, list[str]] = {n: [] for n in parent_of}
        succs: dict[str, list[str]] = {n: [] for n in parent_of}
        for a, b in sorted(lifted):
            preds[b].append(a)
            succs[a].append(b)
        keys: dict[str, tuple[int, ...]] = {}
        edges_by_parent: dict[str | None, list[tuple[str, str]]] = {}
        for a, b in lifted:
            edges_by_parent.setdefault(parent_of[a], []).append((a, b))

        def assign(parent: str | None, prefix: tuple[int, ...]) -> None:
            level = children.get(parent, [])
            ordered = _topological(level, edges_by_parent.get(parent, []),
                                   order_of.__getitem__, list)
            for position, node in enumerate(ordered):
                keys[node] = (*prefix, position)
                if node in self.containers:
                    assign(node, keys[node])

        assign(None, ())
        flats = {flat.name: flat for flat in self.flats}
        atoms: list[AtomSpec] = []
        for node in sorted(keys, key=keys.__getitem__):
            common = {
                "name": node, "key": keys[node], "parent": parent_of[node],
                "preds": tuple(preds[node]), "succs": tuple(succs[node]),
            }
            if node in self.containers:
                atoms.append(AtomSpec(
                    kind=AtomKind.RETRY, retry=self.containers[node].retry,
                    children=tuple(children.get(node, ())), **common,  # type: ignore[arg-type]
                ))
                continue
            flat = flats[node]
            if isinstance(flat.node, Task):
                atoms.append(AtomSpec(
                    kind=AtomKind.TASK, task=flat.node, args=tuple(sources.get(flat.index, ())),
                    provides=flat.provides, unpack=flat.node.unpack, retry=flat.node.retry,
                    timeout=flat.node.timeout, **common,  # type: ignore[arg-type]
                ))
            else:
                atoms.append(AtomSpec(
                    kind=AtomKind.REPEAT, over=over_sources[flat.index], item=flat.node.item,
                    body=flat.body,
                    provides=flat.provides, outer=tuple(outer_sources.get(flat.index, ())),
                    collect=flat.collect, **common,  # type: ignore[arg-type]
                ))
        roots = tuple(n for n in sorted(keys, key=keys.__getitem__) if parent_of[n] is None)
        return Graph({atom.name: atom for atom in atoms}, roots)


def _common_prefix(a: tuple[object, ...], b: tuple[object, ...]) -> tuple[object, ...]:
    out = []
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        out.append(x)
    return tuple(out)


def _topological(
    nodes_in: Iterable[N],
    edges: Iterable[tuple[N, N]],
    rank: Callable[[N], int],
    describe: Callable[[list[N]], list[str]],
) -> list[N]:
    """Kahn's algorithm, ties broken by `rank` (deterministic); CycleError on a cycle."""
    nodes = list(nodes_in)
    indegree = {n: 0 for n in nodes}
    outgoing: dict[N, list[N]] = {n: [] for n in nodes}
    for u, v in edges:
        if u in indegree and v in indegree:
            indegree[v] += 1
            outgoing[u].append(v)
    heap = [(rank(n), n) for n in nodes if indegree[n] == 0]
    heapq.heapify(heap)
    ordered: list[N] = []
    while heap:
        _, n = heapq.heappop(heap)
        ordered.append(n)
        for m in outgoing[n]:
            indegree[m] -= 1
            if indegree[m] == 0:
                heapq.heappush(heap, (rank(m), m))
    if len(ordered) != len(nodes):
        left = [n for n in nodes if indegree[n] > 0]
        raise CycleError(describe(left))
    return ordered
