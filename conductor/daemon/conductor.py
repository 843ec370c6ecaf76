"""The conductor: claim up to max_jobs jobs at once, run each in its own thread, stop cleanly.

Claiming is driven by the board's watches (no polling). A slot is taken before a claim and given
back only after the job's claim has ended (completed, released, parked, trashed or lost), so the
conductor never holds more than `max_jobs` claims — exactly that many at most.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from typing import Any

from conductor.daemon.backoff import Backoff
from conductor.daemon.jobrun import JobEnd, JobRun
from conductor.daemon.services import Liveness, Policy, Services
from conductor.delegation.keeper import DeadlineKeeper
from conductor.engine.dispatch import Dispatcher
from conductor.registry import Registry
from jobboard.board import JobBoard
from jobboard.errors import BoardError
from jobboard.model import BoardEvent, BoardEventKind
from persistence.contract import ExecutionStore

log = logging.getLogger("conductor")


class Conductor:
    """A conductor daemon on a board, a store and a registry (all opened by the caller)."""

    def __init__(
        self,
        name: str,
        board: JobBoard,
        store: ExecutionStore,
        registry: Registry,
        dispatcher: Dispatcher,
        *,
        max_jobs: int = 4,
        policy: Policy | None = None,
        release_backoff: float = 5.0,
        info: dict[str, Any] | None = None,
        callback_url: str | None = None,
    ) -> None:
        if max_jobs < 1:
            raise ValueError(f"max_jobs must be at least 1, got {max_jobs}")
        self.name = name
        self.max_jobs = max_jobs
        self.board = board
        self.info = dict(info or {})
        self.liveness = Liveness(board)
        self.services = Services(
            name=name,
            owner=f"{name}@{socket.gethostname()}:{os.getpid()}",
            board=board,
            store=store,
            registry=registry,
            dispatcher=dispatcher,
            policy=policy or Policy(),
            liveness=self.liveness,
            backoff=Backoff(release_backoff),
            log=log.getChild(name),
            callback_url=callback_url,
        )
        self.keeper = DeadlineKeeper(board, name)
        self._stopping = threading.Event()
        self._rethink = threading.Event()  # set to make a blocked claim_next return early
        self.services.backoff.on_hold = self._reconsider
        self._slots = threading.Condition()
        self._running: dict[str, tuple[JobRun, threading.Thread]] = {}
        self.finished: dict[JobEnd, int] = dict.fromkeys(JobEnd, 0)

    # -- life cycle ---------------------------------------------------------------------
    def serve(self) -> None:
        """Register presence and run jobs until `stop()`; then stop the runs and return once
        every claim has ended. Raises BoardError if presence cannot be registered."""
        self.board.add_listener(self._on_board_event)
        self.board.register("conductors", self.name, {
            **self.info,
            "max_jobs": self.max_jobs,
            "flows": sorted({entry.name for entry in self.services.registry.flows()}),
        })
        log.info("conductor %s serving (max_jobs=%d)", self.name, self.max_jobs)
        self.keeper.start()
        try:
            while not self._stopping.is_set():
                if not self._wait_for_slot():
                    break
                try:
                    self._claim_one()
                except BoardError as exc:
                    log.warning("claiming failed, retrying: %s", exc)
                    self._stopping.wait(1.0)
        finally:
            self._shut_down()
            self.board.remove_listener(self._on_board_event)

    def stop(self, grace: float | None = None) -> None:
        """Stop claiming; running jobs get `grace` seconds (default: the policy's) for their
        tasks in flight, then are released for another conductor. Safe from signal handlers
        and other threads; a second call with grace=0 stops waiting for tasks in flight."""
        grace = self.services.policy.grace if grace is None else grace
        first = not self._stopping.is_set()
        self._stopping.set()
        self._reconsider()
        with self._slots:
            self._slots.notify_all()
            runs = [run for run, _ in self._running.values()]
        if first or grace == 0:
            for run in runs:
                run.stop(grace)

    def running(self) -> list[str]:
        """Ids of the jobs this conductor holds now."""
        with self._slots:
            return list(self._running)

    # -- claiming -----------------------------------------------------------------------
    def _wait_for_slot(self) -> bool:
        with self._slots:
            while len(self._running) >= self.max_jobs and not self._stopping.is_set():
                self._slots.wait()
            return not self._stopping.is_set()

    def _reconsider(self) -> None:
        """Make a blocked claim_next return, so the loop looks at stopping and holds again."""
        self._rethink.set()
        self.board.interrupt()

    def _claim_one(self) -> None:
        self._rethink.clear()  # before reading the holds: a later hold sets it again
        if self._stopping.is_set():
            return
        held, wake_in = self.services.backoff.held()
        claim = self.board.claim_next(
            self.name, timeout=wake_in, stop=self._rethink, exclude=held)
        if claim is None:
            return
        run = JobRun(self.services, claim)
        thread = threading.Thread(target=self._run_job, args=(run,),
                                  name=f"job-{claim.job_id}", daemon=True)
        with self._slots:
            self._running[claim.job_id] = (run, thread)
            if self._stopping.is_set():  # stop() may not have seen this run
                run.stop(self.services.policy.grace)
        thread.start()

    def _run_job(self, run: JobRun) -> None:
        started = time.monotonic()
        end = JobEnd.ABANDONED
        try:
            end = run.run()
        finally:
            with self._slots:
                self._running.pop(run.job_id, None)
                self.finished[end] += 1
                self._slots.notify_all()
            log.debug("job %s ended %s after %.3f s", run.job_id, end.value,
                      time.monotonic() - started)

    def _shut_down(self) -> None:
        with self._slots:
            threads = [thread for _, thread in self._running.values()]
        for thread in threads:
            thread.join()
        self.keeper.stop()
        try:
            self.board.unregister("conductors", self.name)
        except BoardError as exc:
            log.warning("could not unregister presence: %s", exc)
        log.info("conductor %s stopped (%s)", self.name,
                 ", ".join(f"{k.value.lower()} {v}" for k, v in self.finished.items() if v))

    # -- connection events (board event thread) ----------------------------------------
    def _on_board_event(self, event: BoardEvent) -> None:
        if event.kind is BoardEventKind.SUSPENDED:
            log.warning("ZooKeeper connection suspended: starting no new task")
            self.liveness.suspended()
        elif event.kind is BoardEventKind.RECONNECTED:
            log.info("ZooKeeper connection back with the same session")
            self.liveness.resumed()
        elif event.kind is BoardEventKind.LOST:
            log.error("ZooKeeper session lost: abandoning every job held")
            self.liveness.lost()
        elif event.kind is BoardEventKind.NEW_SESSION:
            log.info("new ZooKeeper session: presence renewed, claiming again")
            self.liveness.resumed()
        elif event.kind is BoardEventKind.DUPLICATE_MEMBER:
            log.error("another live conductor uses the name %s: %s", self.name, event.detail)
        elif event.kind is BoardEventKind.WATCH_ERROR:
            log.error("board watch error: %s", event.detail)
