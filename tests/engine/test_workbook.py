"""YAML workbooks and the registry: same graph as Python, errors with file/line/field."""

from __future__ import annotations

from pathlib import Path

import pytest

from conductor.engine import RunState, run_flow
from conductor.registry import (
    InvalidInputs,
    Registry,
    RegistryError,
    UnknownAction,
    UnknownFlow,
)
from conductor.workbook import WorkbookError, parse_workbook

HERE = Path(__file__).parent
WORKBOOK = str(HERE / "shop.yaml")


@pytest.fixture
def registry() -> Registry:
    return Registry.from_specs([WORKBOOK, "tests.engine.shop"])  # python is loaded first


def test_yaml_and_python_flows_compile_to_equal_graphs(registry: Registry) -> None:
    inputs = {"order_id": "o1", "amounts": [5, 7]}
    from_yaml = registry.compile("shop.order", inputs)
    from_python = registry.compile("shop.order.py", inputs)
    assert from_yaml.describe() == from_python.describe()
    assert from_yaml.atoms["reserve"].retry is not None


def test_a_workbook_flow_runs(registry: Registry) -> None:
    compiled = registry.compile("shop.order", {"order_id": "o1", "amounts": [5, 7]})
    outcome = run_flow(compiled, {"order_id": "o1", "amounts": [5, 7]})
    assert outcome.state is RunState.SUCCESS
    assert outcome.result == {"sent": 2}


def test_registry_knows_flows_actions_and_versions(registry: Registry) -> None:
    assert registry.actions() == ["shop.audit", "shop.charge", "shop.notify", "shop.reserve"]
    audit = registry.action("shop.audit")
    assert audit.has_revert and [a.parameter for a in audit.arguments] == ["order_id"]
    entry = registry.get("shop.steps")
    assert entry.version == "3" and entry.description == "n tasks in a line"
    assert registry.get("shop.order").source.endswith("shop.yaml:3")
    with pytest.raises(UnknownFlow, match="'nope'"):
        registry.get("nope")
    with pytest.raises(UnknownFlow, match="no version '9'"):
        registry.compile("shop.steps", {"steps": 1}, version="9")
    with pytest.raises(UnknownAction, match="'missing'"):
        registry.action("missing")


def test_factories_shape_the_flow_from_inputs(registry: Registry) -> None:
    compiled = registry.compile("shop.steps", {"steps": 3})
    assert list(compiled.atoms) == ["step-0", "step-1", "step-2"]
    assert registry.compile("shop.steps", {"steps": 3}) is compiled  # cached


def test_inputs_are_validated_against_the_flow(registry: Registry) -> None:
    with pytest.raises(InvalidInputs, match=r"needs inputs \['amounts'\]"):
        registry.compile("shop.order", {"order_id": "o1"})
    with pytest.raises(InvalidInputs, match="non-negative integer"):
        registry.compile("shop.steps", {"steps": "many"})
    with pytest.raises(InvalidInputs, match="needs input 'steps'"):
        registry.compile("shop.steps", {})


def test_flows_load_from_a_file_path(tmp_path: Path) -> None:
    source = tmp_path / "myflows.py"
    source.write_text(
        "from conductor.flow import linear, task\n"
        "def register(registry):\n"
        "    registry.add_flow('file.flow', linear(task(lambda: 1, name='one', provides='x')))\n"
    )
    registry = Registry.from_specs([str(source)])
    assert run_flow(registry.compile("file.flow", {})).result == {"x": 1}


def test_bad_flow_sources_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match="cannot be imported"):
        Registry().load_module("no_such_module_anywhere")
    with pytest.raises(RegistryError, match="does not exist"):
        Registry().load_file(str(tmp_path / "absent.py"))
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('boom')\n")
    with pytest.raises(RegistryError, match="boom"):
        Registry().load_file(str(broken))


def _error(text: str, registry: Registry) -> WorkbookError:
    with pytest.raises(WorkbookError) as info:
        parse_workbook(text, registry, path="flows.yaml")
    return info.value


BASE = """\
workbook: 1
flows:
  f:
    flow:
      linear:
        - task: a
          action: shop.reserve
"""


def test_a_valid_snippet_parses(registry: Registry) -> None:
    [flow] = parse_workbook(BASE, registry)
    assert flow.name == "f" and flow.version == "1"


@pytest.mark.parametrize(
    ("text", "line", "field", "message"),
    [
        (BASE.replace("action: shop.reserve", "action: shop.nothing"), 7,
         "flows.f.flow.linear[0].action", "no action named 'shop.nothing'"),
        (BASE + "          retry: {times: many}\n", 8,
         "flows.f.flow.linear[0].retry.times", "must be an integer"),
        (BASE + "          timeout: -3\n", 6,
         "flows.f.flow.linear[0]", "timeout must be a number > 0"),
        (BASE + "          colour: red\n", 8,
         "flows.f.flow.linear[0].colour", "unknown field"),
        (BASE.replace("linear:", "sideways:"), 5, "flows.f.flow", "exactly one of"),
        (BASE.replace("workbook: 1", "workbook: 7"), 1, "workbook", "unsupported schema"),
        (BASE + "        - repeat: {over: xs}\n", 8, "flows.f.flow.linear[1].repeat.do",
         "missing"),
        (BASE + "        - repeat: {over: xs, do: {task: b, action: shop.notify}}\n"
         "          name: misplaced\n", 9, "flows.f.flow.linear[1].name", "unknown field"),
        (BASE + "        - task: a\n          action: shop.reserve\n", 5, "flows.f.flow",
         "duplicate atom name 'a'"),
        (BASE.replace("  f:\n", "  f:\n    version: [1]\n"), 4, "flows.f.version",
         "must be a single value"),
    ],
)
def test_workbook_errors_name_file_line_and_field(
    registry: Registry, text: str, line: int, field: str, message: str
) -> None:
    error = _error(text, registry)
    assert (error.path, error.line, error.field) == ("flows.yaml", line, field), str(error)
    assert message in error.message
    assert str(error).startswith(f"flows.yaml:{line}:")


def test_invalid_yaml_syntax_gives_line_and_column(registry: Registry) -> None:
    error = _error("workbook: 1\nflows:\n  f: [unclosed\n", registry)
    assert error.line == 4 and "invalid YAML" in error.message
    error = _error("workbook: 1\nflows:\n\tbad: tab\n", registry)
    assert (error.line, error.column) == (3, 1)


def test_duplicate_keys_are_rejected(registry: Registry) -> None:
    error = _error(BASE + "    flow: {}\n", registry)
    assert error.field == "flows.f.flow" and "twice" in error.message and error.line == 8


GRAPHS = """\
workbook: 1
flows:
  g:
    flow:
      graph:
        - task: notify
          action: shop.notify
          provides: sent
        - task: reserve
          action: shop.reserve
          provides: reservation
        - repeat:
            over: amounts
            provides: charges
            do:
              linear:
                - task: charge
                  action: shop.charge
                  rebind: {amount: item}
                  provides: charged
            name: charging
      edges: [[reserve, charging]]
"""


def test_graph_edges_and_repeat_bodies_in_yaml(registry: Registry) -> None:
    [flow] = parse_workbook(GRAPHS, registry)
    registry.add_flow("g", flow.flow)
    inputs = {"order_id": "o9", "amounts": [1, 2, 3]}
    compiled = registry.compile("g", inputs)
    assert compiled.atoms["charging"].preds == ("reserve",)
    assert compiled.atoms["notify"].preds == ("charging",)  # data flow: needs `charges`
    outcome = run_flow(compiled, inputs)
    assert outcome.state is RunState.SUCCESS
    assert outcome.result["sent"] == 3
    assert outcome.result["charges"][2] == {"amount": 3, "reservation": "reservation-o9"}
