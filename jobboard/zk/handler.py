"""kazoo's threading handler with a cheaper `select` for the connection loop.

kazoo 2.11's `selector_select` builds and closes an epoll selector on every call: three system
calls and a few Python objects, about 30 times per claimed job. `poll(2)` does the same job in
one system call with no file descriptor to create, and has no FD_SETSIZE limit either.
"""

from __future__ import annotations

import select
from typing import Any

from kazoo.handlers.threading import SequentialThreadingHandler

_READ = select.POLLIN | select.POLLPRI | select.POLLHUP | select.POLLERR | select.POLLNVAL
_WRITE = select.POLLOUT | select.POLLHUP | select.POLLERR | select.POLLNVAL


def _fileno(obj: Any) -> int:
    return obj if isinstance(obj, int) else int(obj.fileno())


def poll_select(rlist: list[Any], wlist: list[Any], xlist: list[Any],
                timeout: float | None = None) -> tuple[list[Any], list[Any], list[Any]]:
    """select.select's contract (ready readers, ready writers, no exceptional list) on poll."""
    if timeout is not None and timeout < 0:
        raise ValueError("timeout must be non-negative")
    poller = select.poll()
    masks: dict[int, int] = {}
    for obj in rlist:
        masks[_fileno(obj)] = masks.get(_fileno(obj), 0) | _READ
    for obj in wlist:
        masks[_fileno(obj)] = masks.get(_fileno(obj), 0) | _WRITE
    for fd, mask in masks.items():
        poller.register(fd, mask)
    ready = dict(poller.poll(None if timeout is None else timeout * 1000))
    readers = [obj for obj in rlist if ready.get(_fileno(obj), 0) & _READ]
    writers = [obj for obj in wlist if ready.get(_fileno(obj), 0) & _WRITE]
    return readers, writers, []


class PollingHandler(SequentialThreadingHandler):  # type: ignore[misc]
    """SequentialThreadingHandler whose `select` is `poll_select`."""

    def select(self, *args: Any, **kwargs: Any) -> tuple[list[Any], list[Any], list[Any]]:
        return poll_select(*args, **kwargs)
