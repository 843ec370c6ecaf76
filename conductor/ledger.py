"""Append-only JSON-lines ledgers: the ground truth of which task attempt started where and when.

The demo flows write one from inside each task; `conductor run --task-ledger FILE` makes the
conductor itself record every attempt it starts, for any flow (the chaos suite checks user
flows that way). Each record is one `write` on an O_APPEND descriptor, so lines from several
processes never interleave.
"""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from conductor.engine.decisions import Invocation
from conductor.engine.dispatch import Dispatcher
from conductor.engine.graph import CompiledFlow
from conductor.flow.context import TaskContext


def append_line(path: str | os.PathLike[str], record: dict[str, Any]) -> None:
    """Append one JSON line atomically."""
    line = (json.dumps(record, separators=(",", ":")) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def read_ledger(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every complete JSON line of a ledger (a line still being written is skipped)."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        return []
    entries = []
    for line in text.splitlines():
        if line.strip():
            try:
                entries.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return entries


class LedgerDispatcher:
    """A dispatcher that records each attempt it starts, then hands it to `inner`.

    Records {"job", "task", "attempt", "action", "pid", "t"}; action is "execute" or "revert".
    """

    def __init__(self, inner: Dispatcher, path: str | os.PathLike[str]) -> None:
        self.inner = inner
        self.path = os.fspath(path)

    def check(self, flow: CompiledFlow) -> None:
        self.inner.check(flow)

    def submit(self, invocation: Invocation, context: TaskContext) -> Future[Any]:
        append_line(self.path, {
            "job": context.job_id,
            "task": context.task,
            "attempt": context.attempt,
            "action": invocation.action.value,
            "pid": os.getpid(),
            "t": time.time(),
        })
        return self.inner.submit(invocation, context)

    def shutdown(self, wait: bool) -> None:
        self.inner.shutdown(wait)
