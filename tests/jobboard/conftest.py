"""Fixtures and helpers for job board tests (real ZooKeeper servers from tests/fixtures)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kazoo.client import KazooClient
from kazoo.protocol.connection import _CONNECTION_DROP

from jobboard.board import JobBoard
from jobboard.model import BoardEvent, BoardEventKind
from jobboard.testing.zkserver import ZooKeeperServers

REPO = Path(__file__).resolve().parents[2]
BoardFactory = Callable[..., JobBoard]


@pytest.fixture
def make_board(zk_server: ZooKeeperServers, zk_root: str) -> Iterator[BoardFactory]:
    """`make(hosts=None, root=zk_root, session_timeout=10.0, **kw) -> JobBoard` (closed after)."""
    boards: list[JobBoard] = []

    def make(
        hosts: str | None = None, root: str | None = None, session_timeout: float = 10.0, **kw: Any
    ) -> JobBoard:
        board = JobBoard.connect(
            hosts or zk_server.connect_string,
            root or zk_root,
            session_timeout=session_timeout,
            **kw,
        )
        boards.append(board)
        return board

    yield make
    for board in reversed(boards):
        board.close()


@pytest.fixture
def board(make_board: BoardFactory) -> JobBoard:
    """A board on the shared server under this test's own root."""
    return make_board()


class EventLog:
    """Records board events; `wait_for` blocks (with a deadline) until one of a kind arrives."""

    def __init__(self, board: JobBoard) -> None:
        self.events: list[BoardEvent] = []
        self._condition = threading.Condition()
        board.add_listener(self._record)

    def _record(self, event: BoardEvent) -> None:
        with self._condition:
            self.events.append(event)
            self._condition.notify_all()

    def wait_for(self, kind: BoardEventKind, timeout: float = 30.0, after: int = 0) -> BoardEvent:
        deadline = time.monotonic() + timeout
        with self._condition:
            while True:
                for event in self.events[after:]:
                    if event.kind == kind:
                        return event
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"no {kind} event within {timeout} s: {self.events}")
                self._condition.wait(remaining)

    def kinds(self) -> list[BoardEventKind]:
        with self._condition:
            return [event.kind for event in self.events]


def expire_session(hosts: str, client: KazooClient) -> None:
    """Expire `client`'s session on the server: another client takes it over and closes it."""
    session_id, password = client.client_id
    thief = KazooClient(hosts=hosts, client_id=(session_id, password))
    thief.start(timeout=30)
    thief.stop()
    thief.close()


def drop_connection(client: KazooClient) -> None:
    """Make kazoo drop its connection (the session survives; kazoo reconnects)."""
    client._queue.append((_CONNECTION_DROP, None))
    client._connection._write_sock.send(b"\0")


class RequestCounter:
    """Counts every request a kazoo client sends (kazoo's pings bypass `_call`: not counted)."""

    def __init__(self, client: KazooClient) -> None:
        self.requests: list[str] = []
        original = client._call

        def counting_call(request: Any, async_object: Any) -> Any:
            self.requests.append(type(request).__name__)
            return original(request, async_object)

        client._call = counting_call


def wait_until(predicate: Callable[[], Any], timeout: float = 30.0, what: str = "it") -> Any:
    """Poll a condition nobody can notify us of (another process's state) with a deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


class ClaimerProcess:
    """A JobBoard in a child process (tests/jobboard/claimer_process.py), driven line by line."""

    def __init__(self, hosts: str, root: str, owner: str, session_timeout: float = 10.0) -> None:
        self.owner = owner
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.jobboard.claimer_process",
                hosts,
                root,
                owner,
                str(session_timeout),
            ],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        ready = self.read()
        assert ready.get("ready"), ready
        self.session = int(ready["session"], 16)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def send(self, **command: Any) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()

    def read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise AssertionError(f"claimer {self.owner} exited with {self.proc.wait()}")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def call(self, **command: Any) -> dict[str, Any]:
        self.send(**command)
        return self.read()

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGCONT)  # in case a test paused it
                self.send(op="quit")
                self.proc.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired, ValueError):
                self.proc.kill()
                self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()


@pytest.fixture
def claimers(zk_server: ZooKeeperServers, zk_root: str) -> Iterator[Callable[..., ClaimerProcess]]:
    """`start(owner, hosts=None, session_timeout=10.0) -> ClaimerProcess`; all stopped by PID."""
    started: list[ClaimerProcess] = []

    def start(
        owner: str, hosts: str | None = None, session_timeout: float = 10.0
    ) -> ClaimerProcess:
        process = ClaimerProcess(hosts or zk_server.connect_string, zk_root, owner, session_timeout)
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()
