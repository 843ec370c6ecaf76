"""YAML workbooks: flows declared in a file, calling registered actions by name.

Validated with errors that name the file, line, column and field; compiled to the same graph as
the equivalent Python flow. See conductor.workbook.schema and docs/engine.md.
"""

from __future__ import annotations

from pathlib import Path

from conductor.workbook.reader import Reader, WorkbookError
from conductor.workbook.schema import SCHEMA_VERSION, Actions, WorkbookFlow, read_workbook


def load_workbook(path: str, actions: Actions) -> list[WorkbookFlow]:
    """Read, validate and build the flows of the workbook at `path`."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise WorkbookError(path, 1, 1, "", f"cannot be read: {exc}") from None
    return read_workbook(Reader(path, text), actions)


def parse_workbook(text: str, actions: Actions, path: str = "<string>") -> list[WorkbookFlow]:
    """Like load_workbook, from text (errors name `path`)."""
    return read_workbook(Reader(path, text), actions)


__all__ = [
    "SCHEMA_VERSION",
    "Actions",
    "WorkbookError",
    "WorkbookFlow",
    "load_workbook",
    "parse_workbook",
]
