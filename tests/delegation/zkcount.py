"""Loaded as a flows module (`--flows tests.delegation.zkcount`), it makes the conductor process
append one line `<time> <request type>` per ZooKeeper request it sends to the file named by
ZKC_REQUEST_LOG (kazoo's pings bypass `_call` and are not counted). It registers no flows."""

from __future__ import annotations

import os
import time
from typing import Any

from kazoo.client import KazooClient

_PATH = os.environ.get("ZKC_REQUEST_LOG")
_original = KazooClient._call


def _counting_call(self: KazooClient, request: Any, async_object: Any) -> Any:
    if _PATH:
        line = f"{time.time():.6f} {type(request).__name__}\n".encode()
        fd = os.open(_PATH, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)
    return _original(self, request, async_object)


KazooClient._call = _counting_call


def requests_between(path: str, start: float, end: float) -> list[str]:
    """Request types logged in [start, end)."""
    try:
        with open(path) as log:
            lines = [line.split() for line in log if line.strip()]
    except FileNotFoundError:
        return []
    return [kind for stamp, kind in lines if start <= float(stamp) < end]
