"""poll_select keeps select.select's contract (the kazoo connection loop relies on it)."""

from __future__ import annotations

import socket
import time

import pytest

from jobboard.zk.handler import poll_select


def test_readiness_timeouts_and_closed_peers() -> None:
    left, right = socket.socketpair()
    try:
        started = time.monotonic()
        assert poll_select([left], [], [], 0.05) == ([], [], [])
        assert time.monotonic() - started >= 0.04
        assert poll_select([left], [left], [], 0) == ([], [left], [])
        right.send(b"x")
        assert poll_select([left, right], [], [], 1) == ([left], [], [])
        right.close()
        readers, _, _ = poll_select([left], [], [], 1)  # a closed peer reads as ready (EOF)
        assert readers == [left]
    finally:
        left.close()
    with pytest.raises(ValueError, match="non-negative"):
        poll_select([], [], [], -1)
