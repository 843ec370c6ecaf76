"""The deadline keeper: one conductor per board root, elected, enforces parked jobs' deadlines
and finishes completions whose completer died.

Every conductor runs one and contends in a kazoo Lock election under `<root>/keeper`; the winner
watches `<root>/parked` and `<root>/completions` with persistent recursive watches, reads each
newly parked job's `until` once, and keeps ONE timer: the earliest deadline. When it passes, the
keeper wakes that job (with `deadline_passed` in its document) and any conductor claims it; the
runner then fails (or, for a timer, succeeds) the expired delegation. A completion intent whose
completer's session ended is finished here (wake or notify the job, remove the intent).

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

import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from kazoo.client import KazooState
from kazoo.exceptions import CancelledError, KazooException, NoNodeError
from kazoo.protocol.states import EventType, WatchedEvent

from conductor.delegation.callbacks import nudge
from conductor.delegation.intents import folder as completions_folder
from conductor.delegation.keeperview import KeeperView, Work
from jobboard.board import JobBoard
from jobboard.errors import BoardError, BoardUnavailable
from jobboard.zkwatch import PersistentRecursiveWatch

log = logging.getLogger("conductor.delegation.keeper")

DEADLINE_FIELD = "deadline_passed"
"""Job document field the keeper sets when it wakes a job for a deadline: the deadline it
judged passed (the runner counts delegation deadlines up to it as passed, whatever its clock)."""
RETRY_DELAY = 1.0
MAX_RETRY_DELAY = 30.0


class DeadlineKeeper:
    """Contends for the keeper role on `board`'s root and, while elected, does its work."""

    def __init__(self, board: JobBoard, name: str,
                 clock: Callable[[], float] = time.time) -> None:
        self.board = board
        self.client = board.client
        self.name = name
        self.clock = clock
        self.view = KeeperView()
        self.election_path = f"{board.paths.root}/keeper"
        self._parked_prefix = board.paths.parked + "/"
        self._completions = completions_folder(board)
        self._stop = threading.Event()
        self._lost = threading.Event()
        self._lock: Any = None
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
        self.client.add_listener(self._on_state)
        self._thread = threading.Thread(target=self._main, name="deadline-keeper", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop contending (or leading) and wait (up to `timeout`) for the keeper's thread; a
        thread still waiting on ZooKeeper then ends with the process (it is a daemon)."""
        self._stop.set()
        lock = self._lock
        if lock is not None:
            lock.cancel()
        self._wake_thread()
        if self._thread is not None:
            self._thread.join(timeout)
        self.client.remove_listener(self._on_state)

    def _on_state(self, state: KazooState) -> bool:
        # kazoo's connection thread: only flag and wake the keeper's thread.
        if state == KazooState.LOST:
            self._lost.set()
            self._wake_thread()
        return False

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
        for path in (self.election_path, self._completions):
            self.board.ensure_folder(path)
        self._folders_checked = True

    def _contend_and_lead(self) -> None:
        if not self._folders_checked:
            self._check_folders()
        self.client.ensure_path(self.election_path, self.board.acl)
        self.client.ensure_path(self._completions, self.board.acl)
        lock = self._lock = self.client.Lock(self.election_path, self.name)
        if self._stop.is_set():
            return
        self._lost.clear()
        try:
            if not lock.acquire():
                return
        except CancelledError:
            return
        try:
            self._lead()
        finally:
            with contextlib.suppress(KazooException):  # our node goes with the session anyway
                lock.release()

    # -- leading ----------------------------------------------------------------------------
    def _lead(self) -> None:
        log.info("deadline keeper: %s leads (parked deadlines, orphaned completions)", self.name)
        self.leading.set()
        watches = [
            PersistentRecursiveWatch(self.client, self.board.paths.parked, self._on_parked,
                                     self._resync_parked, self._on_error),
            PersistentRecursiveWatch(self.client, self._completions, self._on_completion,
                                     self._resync_completions, self._on_error),
        ]
        for watch in watches:
            watch.start()
        try:
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
                with contextlib.suppress(KazooException):
                    watch.stop()
            log.info("deadline keeper: %s stepped down", self.name)

    def _wait_for_work(self, not_before: float | None) -> bool:
        """Block until there is work (or `not_before`, after a failure); False to step down."""
        view = self.view
        with view.condition:
            while not (self._stop.is_set() or self._lost.is_set()):
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
                self._delete(f"{self._completions}/{intent.name}")
            except (BoardError, KazooException) as exc:
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
                woken = self.board.wake(job_id, {DEADLINE_FIELD: until})
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
        reads = {job_id: self.client.get_async(self.board.paths.parked_job(job_id))
                 for job_id in job_ids}
        found: dict[str, float | None] = {}
        ok = True
        for job_id, read in reads.items():
            try:
                data, _ = read.get()
            except NoNodeError:
                continue
            except KazooException:
                self.view.parked_created(job_id)  # read it again later
                ok = False
                continue
            found[job_id] = _until(data)
        self.view.deadlines_read(found)
        return ok

    def _delete(self, path: str) -> None:
        with contextlib.suppress(NoNodeError):
            self.client.delete(path)

    # -- watch events (kazoo's callback thread) ---------------------------------------------
    @staticmethod
    def _child(path: str, prefix: str) -> str | None:
        name = path[len(prefix):] if path.startswith(prefix) else ""
        return name if name and "/" not in name else None

    def _on_parked(self, event: WatchedEvent) -> None:
        job_id = self._child(event.path, self._parked_prefix)
        if job_id is None:
            return
        if event.type == EventType.CREATED:
            self.view.parked_created(job_id)
        elif event.type == EventType.DELETED:
            self.view.parked_deleted(job_id)

    def _resync_parked(self) -> None:
        self.view.reset_parked(self.client.get_children(self.board.paths.parked))

    def _on_completion(self, event: WatchedEvent) -> None:
        name = self._child(event.path, self._completions + "/")
        if name is not None and event.type in (EventType.CREATED, EventType.DELETED):
            self.view.intent_event(name, event.type == EventType.CREATED)

    def _resync_completions(self) -> None:
        self.view.reset_intents(self.client.get_children(self._completions))

    def _on_error(self, error: BaseException) -> None:
        log.error("deadline keeper: a watch could not be established: %s", error)


def _until(data: bytes) -> float | None:
    """The `until` of a parked entry (None: no deadline, or unreadable)."""
    try:
        until = json.loads(data).get("until")
    except (ValueError, AttributeError):
        return None
    if isinstance(until, bool) or not isinstance(until, (int, float)):
        return None
    return float(until)
