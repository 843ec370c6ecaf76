"""The deadline keeper: one conductor per board root, elected, enforces parked jobs' deadlines
and finishes completions whose completer died.

Every conductor runs one and contends in the board's election (jobboard.recipes.Election: kazoo's
Lock under `<root>/keeper`); the winner follows `<root>/parked` and `<root>/completions` with
FolderWatch (persistent recursive watches), reads each newly parked job's `until` once
(parked_deadlines), and keeps ONE timer: the earliest deadline. When it passes, the
keeper wakes that job (with `deadline_passed` in its document) and any conductor claims it; the
runner then fails (or, for a timer, succeeds) the expired delegation. A completion intent whose
completer's session ended is finished here (wake or notify the job, discard the intent). The
ZooKeeper side of all this lives in jobboard.recipes; this module and KeeperView decide what is
due and what to wake.

Nothing polls: an idle leader waits on a condition until its next deadline and sends no
request beyond kazoo's pings; a follower waits on a one-shot watch of its predecessor. If the
leader dies its lock node goes with its session and the next contender takes over, re-lists both
folders and carries on. Everything the keeper does is idempotent (waking a job that is not
parked changes nothing), so a brief overlap of two leaders after a partition is harmless.

Its folders and nodes carry the board's ACL (the Lock's nodes through the client's default_acl,
which JobBoard aligns with it); on a secured board `start` refuses (AclMismatch) an existing
`keeper/` or `completions/` folder with another ACL, unless the board was opened with
`repair_acls=True`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from conductor import jobfields
from conductor.delegation.callbacks import nudge
from conductor.delegation.keeperview import KeeperView, Work
from jobboard.board import JobBoard
from jobboard.errors import BoardError, BoardUnavailable
from jobboard.recipes import Election, FolderWatch, Intents, parked_deadlines

log = logging.getLogger("conductor.delegation.keeper")

RETRY_DELAY = 1.0
MAX_RETRY_DELAY = 30.0


class DeadlineKeeper:
    """Contends for the keeper role on `board`'s root and, while elected, does its work."""

    def __init__(self, board: JobBoard, name: str,
                 clock: Callable[[], float] = time.time) -> None:
        self.board = board
        self.name = name
        self.clock = clock
        self.view = KeeperView()
        self.election = Election(board, name, on_lost=self._wake_thread)
        self.election_path = self.election.path
        self.intents = Intents(board, board.paths.completions)
        self._stop = threading.Event()
        self._folders_checked = False
        self._thread: threading.Thread | None = None
        self.leading = threading.Event()
        self.woken = 0  # jobs woken for a deadline (status, tests)
        self.finished = 0  # orphaned completions finished

    # -- life cycle -------------------------------------------------------------------------
    def start(self) -> None:
        """Check (or create) the keeper's folders, then contend in the background. Raises
        AclMismatch (or NotAuthorized) for a folder without the board's ACL; if ZooKeeper is
        unreachable now, the keeper's thread checks them before contending."""
        try:
            self._check_folders()
        except BoardUnavailable as exc:
            log.warning("deadline keeper %s: could not check its folders yet: %s", self.name, exc)
        self.election.start()
        self._thread = threading.Thread(target=self._main, name="deadline-keeper", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop contending (or leading) and wait (up to `timeout`) for the keeper's thread; a
        thread still waiting on ZooKeeper then ends with the process (it is a daemon)."""
        self._stop.set()
        self.election.cancel()
        self._wake_thread()
        if self._thread is not None:
            self._thread.join(timeout)
        self.election.close()

    def _wake_thread(self) -> None:
        with self.view.condition:
            self.view.condition.notify_all()

    def _main(self) -> None:
        delay = RETRY_DELAY
        while not self._stop.is_set():
            try:
                self._contend_and_lead()
                delay = RETRY_DELAY
            except Exception as exc:  # ZooKeeper trouble: contend again a little later
                if self._stop.is_set():
                    break
                log.warning("deadline keeper %s: %s; contending again in %.0f s", self.name,
                            exc, delay)
                self._stop.wait(delay)
                delay = min(delay * 2, MAX_RETRY_DELAY)

    def _check_folders(self) -> None:
        self.election.check_folder()
        self.intents.check_folder()
        self._folders_checked = True

    def _contend_and_lead(self) -> None:
        if not self._folders_checked:
            self._check_folders()
        if not self.election.contend():
            return
        try:
            self._lead()
        finally:
            self.election.resign()

    # -- leading ----------------------------------------------------------------------------
    def _lead(self) -> None:
        log.info("deadline keeper: %s leads (parked deadlines, orphaned completions)", self.name)
        self.leading.set()
        view = self.view
        watches = [
            FolderWatch(self.board, self.board.paths.parked, view.parked_event,
                        view.reset_parked, self._on_error),
            FolderWatch(self.board, self.board.paths.completions, view.intent_event,
                        view.reset_intents, self._on_error),
        ]
        try:
            for watch in watches:
                watch.start()
            not_before: float | None = None
            delay = RETRY_DELAY
            while self._wait_for_work(not_before):
                if self._do(self.view.take(self.clock())):
                    delay = RETRY_DELAY
                    not_before = None
                else:
                    not_before = self.clock() + delay
                    delay = min(delay * 2, MAX_RETRY_DELAY)
        finally:
            self.leading.clear()
            for watch in watches:
                watch.stop()
            log.info("deadline keeper: %s stepped down", self.name)

    def _wait_for_work(self, not_before: float | None) -> bool:
        """Block until there is work (or `not_before`, after a failure); False to step down."""
        view = self.view
        with view.condition:
            while not (self._stop.is_set() or self.election.lost.is_set()):
                now = self.clock()
                ready = not_before is None or now >= not_before
                due = view.next_due()
                if ready and (view.has_work() or (due is not None and due <= now)):
                    return True
                wake_at = [t for t in (due, not_before) if t is not None and t > now]
                view.condition.wait(min(wake_at) - now if wake_at else None)
        return False

    def _do(self, work: Work) -> bool:
        """Do `work`; False if some of it must be retried later (ZooKeeper trouble)."""
        ok = True
        if work.unread:
            ok = self._read_deadlines(work.unread) and ok
        for intent in work.orphans:
            try:
                state = nudge(self.board, intent.job_id, intent.nonce)
                self.intents.discard(intent)
            except BoardError as exc:
                log.warning("could not finish an orphaned completion of job %s: %s",
                            intent.job_id, exc)
                self.view.retry_orphan(intent)
                ok = False
                continue
            self.finished += 1
            log.info("finished a completion of job %s whose completer died (job %s)",
                     intent.job_id, state)
        for job_id, until in work.due:
            try:
                passed = jobfields.updates({jobfields.DEADLINE_PASSED: until})
                woken = self.board.wake(job_id, passed)
            except BoardUnavailable as exc:
                log.warning("could not wake job %s for its deadline: %s", job_id, exc)
                self.view.retry_due(job_id, until, self.clock())
                ok = False
                continue
            except BoardError as exc:  # e.g. its parked entry was garbage: dead-lettered
                log.error("could not wake job %s for its deadline: %s", job_id, exc)
                continue
            if woken:
                self.woken += 1
                log.info("job %s: a delegation deadline passed; woken", job_id)
        return ok

    def _read_deadlines(self, job_ids: list[str]) -> bool:
        found = parked_deadlines(self.board, job_ids)
        for job_id in found.failed:
            self.view.parked_created(job_id)  # read it again later
        self.view.deadlines_read(found.until)
        return not found.failed

    def _on_error(self, error: BaseException) -> None:
        log.error("deadline keeper: a watch could not be established: %s", error)
