"""The processes a chaos run shakes: conductors and a ZooKeeper ensemble, each acted on by PID,
every action recorded as a ChaosEvent (the checker reads them: who was stopped when)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from conductor.chaos.evidence import (
    KILL,
    LEADER_KILL,
    PAUSE,
    RESUME,
    SERVER_RESTART,
    START,
    ChaosEvent,
)
from conductor.testing import ConductorProcess
from jobboard.testing.zkserver import ZooKeeperServers


class Fleet:
    """Conductor processes on one board and database, plus the ensemble they use."""

    def __init__(self, servers: ZooKeeperServers, *, root: str, db: str, log_dir: Path,
                 flows: tuple[str, ...], max_jobs: int, session_timeout: float,
                 extra_args: tuple[str, ...],
                 say: Callable[[str], None] = lambda line: None) -> None:
        self.servers = servers
        self.say = say
        self.root = root
        self.db = db
        self.log_dir = log_dir
        self.flows = flows
        self.max_jobs = max_jobs
        self.session_timeout = session_timeout
        self.extra_args = extra_args
        self.events: list[ChaosEvent] = []
        self.processes: list[ConductorProcess] = []  # every one ever started, in order
        self.killed: set[str] = set()  # names the runner SIGKILLed
        self.paused: set[str] = set()
        self.down_servers: set[int] = set()
        self._lock = threading.Lock()

    def _record(self, kind: str, target: str, pid: int | None) -> None:
        with self._lock:
            self.events.append(ChaosEvent(time.time(), kind, target, pid))
        self.say(f"{kind} {target} (pid {pid})")

    def disruptions(self) -> int:
        """Chaos events so far that stall work: kills, pauses and leader kills."""
        with self._lock:
            return sum(1 for e in self.events if e.kind in (KILL, PAUSE, LEADER_KILL))

    # -- conductors ---------------------------------------------------------------------
    def start_conductor(self) -> ConductorProcess:
        name = f"chaos-{len(self.processes) + 1}"
        process = ConductorProcess(
            name, zk=self.servers.connect_string, root=self.root, db=self.db,
            flows=self.flows, max_jobs=self.max_jobs, session_timeout=self.session_timeout,
            grace=30.0, log_dir=self.log_dir, extra_args=self.extra_args).start()
        self.processes.append(process)
        self._record(START, name, process.pid)
        return process

    def running(self) -> list[ConductorProcess]:
        """Conductors alive and not paused."""
        return [p for p in self.processes if p.alive and p.name not in self.paused]

    def kill(self, process: ConductorProcess) -> None:
        self._record(KILL, process.name, process.pid)
        process.kill()
        self.killed.add(process.name)

    def pause(self, process: ConductorProcess) -> None:
        self._record(PAUSE, process.name, process.pid)
        process.pause()
        self.paused.add(process.name)

    def resume(self, process: ConductorProcess) -> None:
        if process.name not in self.paused:
            return
        process.resume()
        self._record(RESUME, process.name, process.pid)
        self.paused.discard(process.name)

    # -- ZooKeeper ----------------------------------------------------------------------
    def kill_leader(self) -> int | None:
        """SIGKILL the current leader; its index, or None when there is no leader now."""
        leader = self.servers.leader()
        if leader is None:
            return None
        self._record(LEADER_KILL, f"zk-{leader}", self.servers.pid(leader))
        self.servers.kill(leader)
        self.down_servers.add(leader)
        return leader

    def restart_server(self, index: int) -> None:
        self.servers.restart(index, wait=False)
        self.down_servers.discard(index)
        self._record(SERVER_RESTART, f"zk-{index}", self.servers.pid(index))

    def ensemble_whole(self) -> bool:
        """Every server runs and serves (a leader was elected among them)."""
        return not self.down_servers and all(
            self.servers.mode(i) is not None for i in range(self.servers.size))

    # -- the end ------------------------------------------------------------------------
    def heal(self) -> None:
        """Resume paused conductors and restart killed servers."""
        for process in self.processes:
            if process.name in self.paused and process.alive:
                self.resume(process)
        for index in sorted(self.down_servers):
            self.restart_server(index)

    def stop_all(self, timeout: float = 60.0) -> list[str]:
        """SIGTERM every live conductor and wait; problems: a conductor the runner did not
        kill that had exited on its own, or did not exit 0 after SIGTERM."""
        problems = []
        for process in self.processes:
            if process.name in self.killed:
                continue
            if not process.alive:
                code = process.process.returncode if process.process else None
                problems.append(f"{process.name} (pid {process.pid}) exited by itself with "
                                f"status {code}; log: {process.log_path}")
                continue
            process.resume()  # in case it is stopped
            code = process.terminate(timeout)
            if code != 0:
                problems.append(f"{process.name} (pid {process.pid}) exited with {code} after "
                                f"SIGTERM; log: {process.log_path}")
        return problems

    def unexpected_errors(self) -> list[str]:
        """Python tracebacks in the conductors' logs: each is an exception the conductor did
        not expect (it logs expected failures as one line), e.g. an engine bug."""
        problems = []
        for process in self.processes:
            try:
                lines = process.log_path.read_text(errors="replace").splitlines()
            except FileNotFoundError:
                continue
            for index, line in enumerate(lines):
                if not line.startswith("Traceback (most recent call last)"):
                    continue
                record = lines[index - 1] if index else ""
                error = next((later for later in lines[index + 1:]
                              if later and not later.startswith(" ")), "")
                problems.append(f"{process.name}: {record.strip()} / {error.strip()}")
        return problems

    def kill_all(self) -> None:
        """Make sure no conductor outlives the run (SIGCONT then SIGKILL, by PID)."""
        for process in self.processes:
            process.stop()
