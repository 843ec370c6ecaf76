"""A chaos run: a 3-server ZooKeeper ensemble, conductor processes, N jobs, and seeded trouble.

Order of a run: validate the settings and compile the flow (a bad flow or input fails here,
before any process starts); start the ensemble and the conductors (`conductor run
--task-ledger`, so every task start of any flow is recorded); post the jobs; then, until every
job has ended (or `duration` has passed), at seeded random intervals either SIGKILL a random
conductor (a new one is started at once so capacity stays), SIGSTOP one for a seeded time
around the session timeout (then SIGCONT), or SIGKILL the ZooKeeper leader (restarted a few
seconds later); every kind with a weight above zero comes once first, in a seeded order, then
they are drawn by weight. Then heal (resume, restart), wait for the jobs within the bound, stop the
conductors with SIGTERM (each must exit 0), read the evidence and check it.

The database URL (--db, possibly with a password) reaches the conductors in their environment
(CONDUCTOR_DB, see conductor.testing), never on their command lines; progress lines never show it.
"""

from __future__ import annotations

import logging
import random
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from conductor.chaos.checker import CheckOptions, check
from conductor.chaos.config import ChaosConfig, ChaosConfigError
from conductor.chaos.evidence import KILL, LEADER_KILL, PAUSE, Evidence, collect
from conductor.chaos.fleet import Fleet
from conductor.chaos.flowgraph import flow_successors
from conductor.chaos.report import CheckResult, Report
from conductor.config import prepare_db_url
from conductor.registry import RegistryError
from jobboard.board import JobBoard
from jobboard.errors import BoardError, WaitTimeout
from jobboard.testing.zkserver import ZooKeeperServers
from persistence import migrate, open_store

log = logging.getLogger("conductor.chaos")

LEDGER = "task-ledger.jsonl"
LEADER_DOWN = (1.0, 3.0)  # seconds a killed ZooKeeper leader stays down


@dataclass
class ChaosResult:
    report: Report
    evidence: Evidence
    work_dir: Path  # logs and ledgers (removed afterwards unless kept)


class CompletionTracker:
    """Waits (watch-driven) on a thread until every job has ended on the board."""

    def __init__(self, board: JobBoard, jobs: list[str]) -> None:
        self.board = board
        self.jobs = jobs
        self.done = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chaos-tracker", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        for job in self.jobs:
            while not self._stop.is_set():
                try:
                    self.board.wait(job, timeout=1.0)
                    break
                except WaitTimeout:
                    continue
                except BoardError as exc:  # ZooKeeper failing over: try again shortly
                    log.debug("waiting for %s: %s", job, exc)
                    self._stop.wait(0.2)
        if not self._stop.is_set():
            self.done.set()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


class ChaosRunner:
    """Runs one chaos scenario (see the module docstring); `say` gets progress lines."""

    def __init__(self, config: ChaosConfig, say: Callable[[str], None] | None = None,
                 keep: bool = False) -> None:
        self.config = config
        self.say = say or (lambda line: log.info("%s", line))
        self.keep = keep
        self.rng = random.Random(config.seed)
        self.successors: dict[str, frozenset[str]] = {}
        weights = {KILL: config.kill_weight, PAUSE: config.pause_weight,
                   LEADER_KILL: config.leader_kill_weight}
        self._first_kinds = [kind for kind, weight in weights.items() if weight > 0]
        self.rng.shuffle(self._first_kinds)  # every kind once first, in a seeded order

    def prepare(self) -> None:
        """Validate the settings and build the flow once (ChaosConfigError), before any
        process starts."""
        config = self.config
        config.validate()
        if config.work_dir is not None and (Path(config.work_dir) / LEDGER).exists():
            raise ChaosConfigError(
                f"work directory {config.work_dir} already holds a chaos run ({LEDGER}); "
                "give an empty or new directory")
        inputs = config.job_inputs(Path("demo-ledger.jsonl"))
        try:
            self.successors = flow_successors(config.flows, config.flow, inputs)
        except RegistryError as exc:
            raise ChaosConfigError(f"flow {config.flow!r} cannot run: {exc}") from None

    def run(self) -> ChaosResult:
        config = self.config
        self.prepare()
        own_dir = config.work_dir is None
        work = Path(config.work_dir or tempfile.mkdtemp(prefix="zkconductor-chaos-"))
        work.mkdir(parents=True, exist_ok=True)
        result = None
        try:
            result = self._run_in(work)
            return result
        finally:
            failed = result is None or not result.report.ok
            if own_dir and not self.keep and not failed:
                shutil.rmtree(work, ignore_errors=True)
            elif failed:
                self.say(f"logs and ledgers kept in {work}")

    def _run_in(self, work: Path) -> ChaosResult:
        config = self.config
        ledger = work / LEDGER
        inputs = config.job_inputs(work / "demo-ledger.jsonl")
        db = prepare_db_url(config.db or f"sqlite:///{work / 'chaos.db'}")
        migrate.upgrade(db)
        self.say(f"starting a 3-server ZooKeeper ensemble (tickTime {config.zk_tick_ms} ms)")
        with ZooKeeperServers(3, tick_time_ms=config.zk_tick_ms,
                              base_dir=str(work / "zookeeper")) as servers:
            board = JobBoard.connect(servers.connect_string, f"/chaos-{uuid.uuid4().hex[:8]}",
                                     session_timeout=30.0)
            fleet = Fleet(servers, root=board.paths.root, db=db, log_dir=work / "logs",
                          flows=config.flows, max_jobs=config.max_jobs,
                          session_timeout=config.session_timeout,
                          extra_args=("--task-ledger", str(ledger),
                                      "--max-crashes", str(config.max_crashes),
                                      *config.extra_args),
                          say=self.say)
            try:
                for _ in range(config.conductors):
                    fleet.start_conductor()
                for process in fleet.processes:
                    process.wait_registered(board, timeout=60)
                self.say(f"{config.conductors} conductors up; posting {config.jobs} jobs of "
                         f"{config.flow}")
                posted_at = time.time()
                jobs = [board.post(f"chaos-{i}", config.flow, inputs).id
                        for i in range(config.jobs)]
                tracker = CompletionTracker(board, jobs)
                try:
                    self._shake(fleet, tracker, posted_at)
                    fleet.heal()
                    bound = config.bound_for(fleet.disruptions())
                    tracker.done.wait(max(0.0, posted_at + bound - time.time()))
                finally:
                    tracker.stop()
                self.say("stopping the conductors (SIGTERM)")
                stopped = fleet.stop_all()
                with open_store(db) as store:
                    evidence = collect(board, store, jobs, ledger, events=fleet.events,
                                       posted_at=posted_at,
                                       expected_state=config.expected_state,
                                       successors=self.successors)
            finally:
                fleet.kill_all()
                board.close()
        bound = config.bound_for(fleet.disruptions())
        report = check(evidence, CheckOptions(bound=bound), extra=[
            CheckResult("conductors_healthy", stopped),
            CheckResult("no_unexpected_errors", fleet.unexpected_errors())])
        return ChaosResult(report, evidence, work)

    # -- the chaos loop -----------------------------------------------------------------
    def _shake(self, fleet: Fleet, tracker: CompletionTracker, posted_at: float) -> None:
        config = self.config
        started = time.time()
        deadline = posted_at + config.bound_for(0) + 600.0  # a backstop; see bound_for
        next_event = started + self._gap()
        later: list[tuple[float, Callable[[], None]]] = []  # resumes and restarts, when due
        while not tracker.done.is_set():
            now = time.time()
            if config.duration is not None and now - started >= config.duration:
                break
            if now >= min(deadline, posted_at + config.bound_for(fleet.disruptions())):
                self.say("bound reached with jobs still running; stopping the chaos")
                break
            for due, action in [item for item in later if item[0] <= now]:
                later.remove((due, action))
                action()
            if now >= next_event:
                self._event(fleet, later, now)
                next_event = now + self._gap()
            wake = min([next_event, *(due for due, _ in later)])
            tracker.done.wait(max(0.0, wake - time.time()))  # the scenario's pause

    def _gap(self) -> float:
        return self.rng.uniform(0.5, 1.5) * self.config.interval

    def _event(self, fleet: Fleet, later: list[tuple[float, Callable[[], None]]],
               now: float) -> None:
        config = self.config
        running = sorted(fleet.running(), key=lambda p: p.name)
        choices = []
        if running and config.kill_weight > 0:
            choices.append((KILL, config.kill_weight))
        if len(running) >= 2 and not fleet.paused and config.pause_weight > 0:
            choices.append((PAUSE, config.pause_weight))
        if config.leader_kill_weight > 0 and fleet.ensemble_whole():
            choices.append((LEADER_KILL, config.leader_kill_weight))
        if not choices:
            return
        possible = [kind for kind, _ in choices]
        first = [kind for kind in self._first_kinds if kind in possible]
        if first:
            kind = first[0]
            self._first_kinds.remove(kind)
        else:
            kind = self.rng.choices(possible, [weight for _, weight in choices])[0]
        if kind == KILL:
            fleet.kill(self.rng.choice(running))
            fleet.start_conductor()
        elif kind == PAUSE:
            victim = self.rng.choice(running)
            fleet.pause(victim)
            pause = self.rng.uniform(config.pause_min, config.pause_max) * config.session_timeout
            later.append((now + pause, lambda: fleet.resume(victim)))
        else:
            index = fleet.kill_leader()
            if index is not None:
                down = self.rng.uniform(*LEADER_DOWN)
                later.append((now + down, lambda: fleet.restart_server(index)))
