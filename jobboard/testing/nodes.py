"""Wait for a znode to appear or disappear, driven by one-shot watches (no polling)."""

from __future__ import annotations

import threading
import time

from kazoo.client import KazooClient
from kazoo.protocol.states import WatchedEvent


class NodeTimeout(AssertionError):
    """A node did not appear (or disappear) before the deadline."""


def wait_for_node(client: KazooClient, path: str, timeout: float, *,
                  gone: bool = False) -> None:
    """Block until `path` exists (or, with gone=True, no longer exists), watch-driven;
    NodeTimeout after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        changed = threading.Event()

        def watcher(event: WatchedEvent, changed: threading.Event = changed) -> None:
            changed.set()

        present = client.exists(path, watch=watcher) is not None
        if present != gone:
            return
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not changed.wait(remaining):
            state = "disappear" if gone else "appear"
            raise NodeTimeout(f"{path} did not {state} within {timeout:g} s")
