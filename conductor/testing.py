"""Real conductor processes on this machine, for the demo, the chaos suite, benchmarks and tests.

A `ConductorProcess` is a `conductor run` child process with its own log file, stopped by its
PID (SIGTERM, SIGKILL, SIGSTOP/SIGCONT). Its database URL, which may hold a password, goes to
it in the environment (CONDUCTOR_DB), never on its command line (visible to anyone in `ps`).
`wait_until` waits on a condition with a deadline; the ledger helpers read the JSON-lines
files the demo flows and `--task-ledger` append to.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TypeVar

from kazoo.client import KazooClient
from kazoo.protocol.states import WatchedEvent

T = TypeVar("T")


class ConditionTimeout(AssertionError):
    """A condition did not become true before its deadline."""


def wait_until(condition: Callable[[], T], timeout: float, what: str,
               interval: float = 0.02) -> T:
    """Return condition()'s first truthy value, checking every `interval` s up to `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise ConditionTimeout(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def wait_for_node(client: KazooClient, path: str, timeout: float, *,
                  gone: bool = False) -> None:
    """Block until `path` exists (or, with gone=True, no longer exists), watch-driven."""
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
            raise ConditionTimeout(f"{path} did not {state} within {timeout:g} s")


class ConductorProcess:
    """One `conductor run` process with a log file; every method acts on its PID."""

    def __init__(
        self,
        name: str,
        *,
        zk: str,
        root: str,
        db: str,
        flows: Sequence[str] = ("conductor.demo",),
        max_jobs: int = 4,
        session_timeout: float = 2.0,
        grace: float = 10.0,
        log_dir: str | os.PathLike[str],
        extra_args: Iterable[str] = (),
        env: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.root = root
        self.log_path = Path(log_dir) / f"{name}.log"
        self.args = [
            sys.executable, "-m", "conductor.cli.main", "run",
            "--name", name, "--zk", zk, "--root", root,
            "--max-jobs", str(max_jobs), "--session-timeout", str(session_timeout),
            "--grace", str(grace),
            *(arg for flow in flows for arg in ("--flows", flow)),
            *extra_args,
        ]
        # The URL may carry a password: the environment is private to the process (and its
        # owner), the command line is not. CONDUCTOR_DB ranks below flags, so --db in
        # extra_args would still win.
        self.env = {**os.environ, **(env or {}), "CONDUCTOR_DB": db}
        self.env.pop("CONDUCTOR_CONFIG", None)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        if self.process is None:
            raise RuntimeError(f"conductor {self.name} was never started")
        return self.process.pid

    def start(self) -> ConductorProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(self.args, stdout=log, stderr=subprocess.STDOUT,
                                            env=self.env, start_new_session=True)
        return self

    def wait_registered(self, client: KazooClient, timeout: float = 30.0) -> None:
        """Block until this process's presence node exists (it is claiming from then on)."""
        path = f"{self.root}/conductors/{self.name}"

        def registered() -> bool:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(
                    f"conductor {self.name} exited with {self.process.returncode}:\n"
                    + self.log_tail())
            try:
                data, _ = client.get(path)
            except Exception:
                return False
            return bool(json.loads(data).get("pid") == self.pid)

        deadline = time.monotonic() + timeout
        while not registered():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ConditionTimeout(f"conductor {self.name} did not register within "
                                       f"{timeout:g} s:\n{self.log_tail()}")
            try:
                wait_for_node(client, path, min(remaining, 1.0))
            except ConditionTimeout:
                continue

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL and reap."""
        self._signal(signal.SIGKILL)
        self.wait(30)

    def pause(self) -> None:
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal(signal.SIGCONT)

    def terminate(self, timeout: float = 60.0) -> int:
        """SIGTERM; returns the exit status (SIGKILL if it has not exited within `timeout`)."""
        self._signal(signal.SIGTERM)
        return self.wait(timeout)

    def wait(self, timeout: float) -> int:
        assert self.process is not None
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self._signal(signal.SIGKILL)
            return self.process.wait(30)

    def stop(self) -> None:
        """Make sure the process is gone (SIGCONT in case it is paused, then SIGKILL)."""
        if self.alive:
            self._signal(signal.SIGCONT)
            self.kill()

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    def _signal(self, signum: int) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signum)
