"""Typed access to a composed YAML node tree that keeps every value's line and column.

Errors name the file, the line and column, and the field's path (e.g.
`flows.orders.flow.linear[2].retry.times`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import yaml


class WorkbookError(ValueError):
    """A workbook is invalid; `path`, `line`, `column` (1-based) and `field` say where."""

    def __init__(self, path: str, line: int, column: int, field: str, message: str) -> None:
        self.path = path
        self.line = line
        self.column = column
        self.field = field
        self.message = message
        where = f"{path}:{line}:{column}"
        super().__init__(f"{where}: {field}: {message}" if field else f"{where}: {message}")


class Reader:
    """Reads nodes of one file; every accessor raises WorkbookError at the node's position."""

    def __init__(self, path: str, text: str) -> None:
        self.path = path
        self._loader = yaml.SafeLoader(text)
        try:
            root = self._loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
            raise WorkbookError(path, line, column, "",
                                f"invalid YAML: {exc.problem or exc}") from None
        except yaml.YAMLError as exc:
            raise WorkbookError(path, 1, 1, "", f"invalid YAML: {exc}") from None
        if root is None:
            raise WorkbookError(path, 1, 1, "", "the file is empty")
        self.root: yaml.Node = root

    def error(self, node: yaml.Node, field: str, message: str) -> WorkbookError:
        mark = node.start_mark
        return WorkbookError(self.path, mark.line + 1, mark.column + 1, field, message)

    def mapping(self, node: yaml.Node, field: str) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        """{key: (key node, value node)}; keys must be unique strings."""
        if not isinstance(node, yaml.MappingNode):
            raise self.error(node, field, f"must be a mapping, not {_kind(node)}")
        out: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key_node, value_node in node.value:
            # keys are taken as written: YAML 1.1 would read the key `on` as True
            if not isinstance(key_node, yaml.ScalarNode) or not key_node.value:
                raise self.error(key_node, field, "keys must be plain strings")
            key = str(key_node.value)
            if key in out:
                raise self.error(key_node, _join(field, key), "is given twice")
            out[key] = (key_node, value_node)
        return out

    def only(self, node: yaml.Node, fields: dict[str, tuple[yaml.Node, yaml.Node]],
             allowed: set[str], field: str) -> None:
        for key, (key_node, _) in fields.items():
            if key not in allowed:
                raise self.error(key_node, _join(field, key),
                                 f"unknown field (allowed here: {', '.join(sorted(allowed))})")

    def sequence(self, node: yaml.Node, field: str) -> Iterator[tuple[int, yaml.Node]]:
        if not isinstance(node, yaml.SequenceNode):
            raise self.error(node, field, f"must be a list, not {_kind(node)}")
        return iter(enumerate(node.value))

    def scalar(self, node: yaml.Node, field: str) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            raise self.error(node, field, f"must be a single value, not {_kind(node)}")
        return self._loader.construct_object(node, deep=True)

    def string(self, node: yaml.Node, field: str) -> str:
        value = self.scalar(node, field)
        if not isinstance(value, str) or not value:
            raise self.error(node, field, f"must be a non-empty string, not {value!r}")
        return value

    def text(self, node: yaml.Node, field: str) -> str:
        """A string, or a number written without quotes (e.g. a version `2`)."""
        value = self.scalar(node, field)
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise self.error(node, field, f"must be a string, not {value!r}")
        return str(value)

    def number(self, node: yaml.Node, field: str, *, integer: bool = False) -> float:
        value = self.scalar(node, field)
        kinds = (int,) if integer else (int, float)
        if isinstance(value, bool) or not isinstance(value, kinds):
            wanted = "an integer" if integer else "a number"
            raise self.error(node, field, f"must be {wanted}, not {value!r}")
        return value

    def strings(self, node: yaml.Node, field: str) -> list[str]:
        """A list of strings (a single string counts as a list of one)."""
        if isinstance(node, yaml.ScalarNode):
            return [self.string(node, field)]
        return [self.string(item, f"{field}[{i}]") for i, item in self.sequence(node, field)]


def _kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    return f"the value {node.value!r}"


def _join(field: str, key: str) -> str:
    return f"{field}.{key}" if field else key
