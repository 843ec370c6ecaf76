"""How CLI commands print: aligned tables for people, one JSON document for programs, and an
error as one line on stderr (one JSON object with --json)."""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any, TextIO

from conductor.cli.parser import UsageError
from conductor.cli.statuses import EXIT_USAGE, KINDS, Failure


def emit_json(data: Any, stream: TextIO | None = None) -> None:
    """One JSON document on stdout, newline-terminated."""
    out = stream or sys.stdout
    out.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def emit_table(
    rows: Sequence[Sequence[Any]], headers: Sequence[str], stream: TextIO | None = None
) -> None:
    """Columns aligned to their widest cell, `-` for a missing value."""
    out = stream or sys.stdout
    cells = [[_cell(value) for value in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    line = "  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True))
    out.write(line.rstrip() + "\n")
    for row in cells:
        out.write("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() + "\n")


def _cell(value: Any) -> str:
    if value is None or value == "":
        return "-"
    return str(value)


def age(since: float | None, now: float | None = None) -> str | None:
    """A compact age like 4s, 12m, 3h, 2d."""
    if since is None:
        return None
    return duration(max(0.0, (now if now is not None else time.time()) - since))


def duration(seconds: float | None) -> str | None:
    """A compact duration: 850ms, 4.2s, 12m, 3h, 2d."""
    if seconds is None:
        return None
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    if seconds < 3600:
        return f"{seconds / 60:.0f}m"
    if seconds < 86400:
        return f"{seconds / 3600:.0f}h"
    return f"{seconds / 86400:.0f}d"


def timestamp(value: float | None) -> str | None:
    """UTC ISO-8601 with seconds, or None."""
    if value is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(value))


def emit_event(event: str, **fields: Any) -> None:
    """One JSON line on stdout, flushed at once (a supervisor reads it while we run)."""
    sys.stdout.write(json.dumps({"event": event, **fields}, sort_keys=True, default=str) + "\n")
    sys.stdout.flush()


class Announcer:
    """The --json lines of a long-running command (`run`, `serve`): "ready" at most once and
    never after "stopped"; "stopped" at most once. Safe from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.ready = False
        self.stopped = False

    def announce_ready(self, **fields: Any) -> bool:
        with self._lock:
            if self.ready or self.stopped:
                return False
            self.ready = True
            emit_event("ready", **fields)
            return True

    def announce_stopped(self, **fields: Any) -> None:
        with self._lock:
            if not self.stopped:
                self.stopped = True
                emit_event("stopped", **fields)


def report_failure(args: argparse.Namespace, failure: Failure) -> int:
    """Print an error on stderr (as JSON with --json) and return its exit status."""
    if getattr(args, "json", False):
        write_json_error(failure.message, failure.status, failure.kind)
    else:
        sys.stderr.write(f"conductor: error: {failure.message}\n")
    return failure.status


def report_usage_error(error: UsageError, as_json: bool) -> int:
    """A usage error on stderr: argparse's usage and message, or with --json the one JSON error
    object every command prints; returns EXIT_USAGE."""
    if as_json:
        write_json_error(f"{error.parser.prog}: {error.message}", EXIT_USAGE, "usage")
    else:
        error.parser.print_usage(sys.stderr)
        sys.stderr.write(f"{error.parser.prog}: error: {error.message}\n")
    return EXIT_USAGE


def write_json_error(message: str, status: int, kind: str | None = None) -> None:
    """The one JSON error shape: {"error": message, "status": exit status, "kind": usage |
    timeout | failed | unavailable | interrupted}, one line on stderr."""
    document = {"error": message, "status": status, "kind": kind or KINDS.get(status, "failed")}
    sys.stderr.write(json.dumps(document) + "\n")
