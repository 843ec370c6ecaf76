"""The workbook schema: YAML flows built into the same objects as the Python API.

    workbook: 1
    flows:
      orders.process:
        version: "2"
        inputs: [order_id, items]
        outputs: [receipt]
        flow:
          linear:
            - task: reserve
              action: shop.reserve
              provides: reservation
              retry: {times: 3, delay: 1, backoff: 2, on: [ConnectionError]}
            - repeat:
                over: items
                provides: charges
                do: {task: charge, action: shop.charge, rebind: {amount: item}}

A node is a task (`task` + `action`), a pattern (`linear`, `unordered` or `graph` with a list
of nodes; optional `name` and `retry`; a graph may have `edges`), or a `repeat`. docs/engine.md
describes every field.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import yaml

from conductor.engine.compiler import compile_flow
from conductor.flow.errors import FlowError, MissingInputs
from conductor.flow.patterns import Flow, Graph, Linear, Repeat, Unordered
from conductor.flow.retry import Retry
from conductor.flow.task import Task
from conductor.workbook.reader import Reader

SCHEMA_VERSION = 1
_PATTERNS: dict[str, type[Flow]] = {"linear": Linear, "unordered": Unordered, "graph": Graph}
_RETRY_FIELDS = {"times", "delay", "backoff", "max_delay", "jitter", "on"}


class Actions(Protocol):
    def action(self, name: str) -> Task:
        """The task registered under `name`; raises LookupError if none."""
        ...


@dataclass(frozen=True)
class WorkbookFlow:
    """One flow declared by a workbook."""

    name: str
    version: str
    flow: Flow | Task
    description: str
    source: str


def read_workbook(reader: Reader, actions: Actions) -> list[WorkbookFlow]:
    """Validate and build every flow of the workbook."""
    top = reader.mapping(reader.root, "")
    reader.only(reader.root, top, {"workbook", "flows"}, "")
    if "workbook" not in top:
        raise reader.error(reader.root, "workbook",
                           f"missing (the schema version; write `workbook: {SCHEMA_VERSION}`)")
    version_node = top["workbook"][1]
    if reader.scalar(version_node, "workbook") != SCHEMA_VERSION:
        raise reader.error(version_node, "workbook",
                           f"unsupported schema version (this conductor reads {SCHEMA_VERSION})")
    if "flows" not in top:
        raise reader.error(reader.root, "flows", "missing (a mapping of flow names)")
    builder = _Builder(reader, actions)
    found = []
    for name, (key_node, node) in reader.mapping(top["flows"][1], "flows").items():
        field = f"flows.{name}"
        fields = reader.mapping(node, field)
        reader.only(node, fields, {"version", "description", "inputs", "outputs", "flow"}, field)
        if "flow" not in fields:
            raise reader.error(key_node, f"{field}.flow", "missing (the flow's pattern)")
        options: dict[str, Any] = {}
        for key in ("inputs", "outputs"):
            if key in fields:
                options[key] = reader.strings(fields[key][1], f"{field}.{key}")
        flow_node = fields["flow"][1]
        built = builder.node(flow_node, f"{field}.flow")
        if options:
            if not isinstance(built, Flow):
                built = Linear([built])
            built.inputs = tuple(options.get("inputs", ())) if "inputs" in options else None
            built.outputs = tuple(options["outputs"]) if "outputs" in options else None
        _check(reader, flow_node, f"{field}.flow", built, "inputs" in options)
        found.append(WorkbookFlow(
            name=name,
            version=reader.text(fields["version"][1], f"{field}.version")
            if "version" in fields else "1",
            flow=built,
            description=reader.text(fields["description"][1], f"{field}.description")
            if "description" in fields else "",
            source=f"{reader.path}:{key_node.start_mark.line + 1}",
        ))
    return found


def _check(reader: Reader, node: yaml.Node, field: str, flow: Flow | Task,
           declared_inputs: bool) -> None:
    """Compile once at load time so names, cycles and (with declared inputs) data flow are
    reported against the file; a flow without declared inputs is checked for data flow when a
    job runs it."""
    try:
        compile_flow(flow, ())
    except MissingInputs as exc:
        if declared_inputs:
            raise reader.error(node, field, str(exc)) from None
    except FlowError as exc:
        raise reader.error(node, field, str(exc)) from None


class _Builder:
    def __init__(self, reader: Reader, actions: Actions) -> None:
        self.reader = reader
        self.actions = actions

    def node(self, node: yaml.Node, field: str) -> Task | Flow:
        fields = self.reader.mapping(node, field)
        kinds = [k for k in ("task", "repeat", *_PATTERNS) if k in fields]
        if len(kinds) != 1:
            raise self.reader.error(
                node, field,
                "must have exactly one of: task, linear, unordered, graph, repeat"
                + (f" (found {kinds})" if kinds else ""),
            )
        kind = kinds[0]
        try:
            if kind == "task":
                return self.task(node, fields, field)
            if kind == "repeat":
                self.reader.only(node, fields, {"repeat"}, field)
                return self.repeat(fields["repeat"][1], field + ".repeat")
            return self.pattern(node, fields, kind, field)
        except FlowError as exc:
            raise self.reader.error(node, field, str(exc)) from None

    def task(self, node: yaml.Node, fields: dict[str, tuple[yaml.Node, yaml.Node]],
             field: str) -> Task:
        r = self.reader
        r.only(node, fields, {"task", "action", "provides", "rebind", "retry", "timeout"}, field)
        name = r.string(fields["task"][1], f"{field}.task")
        if "action" not in fields:
            raise r.error(node, f"{field}.action", "missing (the registered action to call)")
        action_node = fields["action"][1]
        action_name = r.string(action_node, f"{field}.action")
        try:
            base = self.actions.action(action_name)
        except LookupError as exc:
            raise r.error(action_node, f"{field}.action", str(exc.args[0])) from None
        options: dict[str, Any] = {"name": name}
        if "provides" in fields:
            value = fields["provides"][1]
            options["provides"] = (r.string(value, f"{field}.provides")
                                   if isinstance(value, yaml.ScalarNode)
                                   else r.strings(value, f"{field}.provides"))
        if "rebind" in fields:
            rebind_field = f"{field}.rebind"
            options["rebind"] = {
                key: r.string(value, f"{rebind_field}.{key}")
                for key, (_, value) in r.mapping(fields["rebind"][1], rebind_field).items()
            }
        if "retry" in fields:
            options["retry"] = self.retry(fields["retry"][1], f"{field}.retry")
        if "timeout" in fields:
            options["timeout"] = r.number(fields["timeout"][1], f"{field}.timeout")
        return base.with_options(**options)

    def retry(self, node: yaml.Node, field: str) -> Retry:
        r = self.reader
        fields = r.mapping(node, field)
        r.only(node, fields, _RETRY_FIELDS, field)
        options: dict[str, Any] = {}
        for key, (_, value) in fields.items():
            if key == "on":
                options["on"] = tuple(r.strings(value, f"{field}.on"))
            elif key == "times":
                options["times"] = r.number(value, f"{field}.times", integer=True)
            else:
                options[key] = r.number(value, f"{field}.{key}")
        try:
            return Retry(**options)
        except FlowError as exc:
            raise r.error(node, field, str(exc)) from None

    def pattern(self, node: yaml.Node, fields: dict[str, tuple[yaml.Node, yaml.Node]],
                kind: str, field: str) -> Flow:
        r = self.reader
        allowed = {kind, "name", "retry"} | ({"edges"} if kind == "graph" else set())
        r.only(node, fields, allowed, field)
        list_field = f"{field}.{kind}"
        children = [self.node(child, f"{list_field}[{i}]")
                    for i, child in r.sequence(fields[kind][1], list_field)]
        options: dict[str, Any] = {}
        if "name" in fields:
            options["name"] = r.string(fields["name"][1], f"{field}.name")
        if "retry" in fields:
            options["retry"] = self.retry(fields["retry"][1], f"{field}.retry")
        make: Callable[..., Flow] = _PATTERNS[kind]
        if kind == "graph":
            edges = []
            if "edges" in fields:
                for i, edge in r.sequence(fields["edges"][1], f"{field}.edges"):
                    pair = r.strings(edge, f"{field}.edges[{i}]")
                    if len(pair) != 2:
                        raise r.error(edge, f"{field}.edges[{i}]",
                                      "must be a pair [before, after] of child names")
                    edges.append((pair[0], pair[1]))
            return make(children, edges=edges, **options)
        return make(children, **options)

    def repeat(self, node: yaml.Node, field: str) -> Repeat:
        r = self.reader
        fields = r.mapping(node, field)
        r.only(node, fields, {"over", "item", "provides", "name", "do"}, field)
        for required in ("over", "do"):
            if required not in fields:
                raise r.error(node, f"{field}.{required}", "missing")
        options = {
            key: r.string(fields[key][1], f"{field}.{key}")
            for key in ("over", "item", "provides", "name") if key in fields
        }
        body = self.node(fields["do"][1], f"{field}.do")
        return Repeat(body, **options)
