"""Real conductor processes on this machine, for the demo, the chaos suite, benchmarks and tests.

A `ConductorProcess` is a `conductor run` child process with its own log file, stopped by its
PID (SIGTERM, SIGKILL, SIGSTOP/SIGCONT). Its database URL, which may hold a password, goes to
it in the environment (CONDUCTOR_DB), never on its command line (visible to anyone in `ps`).
`wait_until` waits on a condition with a deadline; the ledger helpers read the JSON-lines
files the demo flows and `--task-ledger` append to.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from jobboard.recipes import MemberWatch

if TYPE_CHECKING:
    from jobboard.board import JobBoard

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

    def wait_registered(self, board: JobBoard, timeout: float = 30.0) -> None:
        """Block until this process's presence node exists (it is claiming from then on),
        watched on `board` (which must be on this process's root)."""
        if board.paths.root != self.root:
            raise ValueError(f"board root {board.paths.root} is not conductor {self.name}'s "
                             f"root {self.root}")
        registered = threading.Event()
        given_up = threading.Event()

        def changed(document: dict[str, Any] | None) -> bool:
            if document is not None and document.get("pid") == self.pid:
                registered.set()
            return not (registered.is_set() or given_up.is_set())

        MemberWatch(board, "conductors", self.name, changed)
        deadline = time.monotonic() + timeout
        try:
            while not registered.wait(max(0.0, min(deadline - time.monotonic(), 1.0))):
                if self.process is not None and self.process.poll() is not None:
                    raise RuntimeError(
                        f"conductor {self.name} exited with {self.process.returncode}:\n"
                        + self.log_tail())
                if time.monotonic() >= deadline:
                    raise ConditionTimeout(f"conductor {self.name} did not register within "
                                           f"{timeout:g} s:\n{self.log_tail()}")
        finally:
            given_up.set()

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
