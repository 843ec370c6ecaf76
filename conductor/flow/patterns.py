"""Patterns that arrange tasks: linear, unordered (parallel), graph, and repeat (for-each).

Patterns nest. Each may carry a retry policy (the whole sub-flow is reverted and run again), a
name, and (on the outermost flow) declared `inputs` and `outputs`. Nothing is checked here beyond
the shape of the arguments: the compiler validates data flow, names and cycles.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeAlias

from conductor.flow.errors import InvalidTask
from conductor.flow.retry import Retry
from conductor.flow.task import FunctionTask, Task, check_name

Node: TypeAlias = "Task | Flow"


def _as_node(item: object, where: str) -> Task | Flow:
    if isinstance(item, (Task, Flow)):
        return item
    if callable(item):
        return FunctionTask(item)
    raise InvalidTask(f"{where}: {item!r} is neither a task nor a flow")


class Flow:
    """Base of the patterns. `inputs`/`outputs` matter on the outermost flow only.

    `inputs`: names the flow expects from its caller (a job's inputs); when None, whatever inputs
    are given at compile time are the inputs. `outputs`: names whose values form the flow's
    result; when None the result is every value the flow's tasks provided.
    """

    kind = "flow"

    def __init__(
        self,
        children: Iterable[object],
        *,
        name: str | None = None,
        retry: Retry | None = None,
        inputs: Sequence[str] | None = None,
        outputs: Sequence[str] | None = None,
    ) -> None:
        self.name = None if name is None else check_name(name, f"{self.kind} name")
        label = f"{self.kind} {self.name!r}" if self.name else self.kind
        self.children = tuple(_as_node(child, label) for child in children)
        if retry is not None and not isinstance(retry, Retry):
            raise InvalidTask(f"{label}: retry must be a Retry, not {retry!r}")
        self.retry = retry
        self.inputs = None if inputs is None else tuple(
            check_name(n, f"input of {label}") for n in inputs
        )
        self.outputs = None if outputs is None else tuple(
            check_name(n, f"output of {label}") for n in outputs
        )

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name or ''} of {len(self.children)}>"


class Linear(Flow):
    """Children run one after the other."""

    kind = "linear"


class Unordered(Flow):
    """Children run in parallel; none may need what another provides."""

    kind = "unordered"


class Graph(Flow):
    """Children ordered by data flow (a child that needs a value runs after the child that
    provides it) plus explicit `edges` (pairs of child names: first runs before second)."""

    kind = "graph"

    def __init__(
        self,
        children: Iterable[object],
        *,
        edges: Iterable[tuple[str, str]] = (),
        **options: Any,
    ) -> None:
        super().__init__(children, **options)
        pairs = []
        for edge in edges:
            if (not isinstance(edge, (tuple, list)) or len(edge) != 2
                    or not all(isinstance(e, str) for e in edge)):
                raise InvalidTask(f"graph edge must be a pair of child names, not {edge!r}")
            pairs.append((edge[0], edge[1]))
        self.edges = tuple(pairs)


class Repeat(Flow):
    """Run `body` once for each value of the list named `over`, each run seeing the value as
    `item`; `provides` names the list of per-item results, in the order of `over`.

    An item's result is the body's single provided value, or a dict of every value the body
    provides when it provides several. Runs of different items are independent (parallel).
    """

    kind = "repeat"

    def __init__(
        self,
        body: object,
        *,
        over: str,
        item: str = "item",
        provides: str = "results",
        name: str | None = None,
    ) -> None:
        self.over = check_name(over, "repeat over")
        self.item = check_name(item, "repeat item")
        self.provides = check_name(provides, "repeat provides")
        super().__init__([body], name=name if name is not None else f"repeat-{provides}")

    @property
    def body(self) -> Task | Flow:
        return self.children[0]


def linear(*children: object, **options: Any) -> Linear:
    """Children run one after the other (options: name, retry, inputs, outputs)."""
    return Linear(children, **options)


def unordered(*children: object, **options: Any) -> Unordered:
    """Children run in parallel (options: name, retry, inputs, outputs)."""
    return Unordered(children, **options)


def graph(*children: object, edges: Iterable[tuple[str, str]] = (), **options: Any) -> Graph:
    """Children ordered by data flow plus explicit edges (options: name, retry, inputs,
    outputs)."""
    return Graph(children, edges=edges, **options)


def repeat(
    body: Task | Flow | Callable[..., Any],
    *,
    over: str,
    item: str = "item",
    provides: str = "results",
    name: str | None = None,
) -> Repeat:
    """Run `body` for each value of the list `over` (see Repeat)."""
    return Repeat(body, over=over, item=item, provides=provides, name=name)
