"""JobBoard: the job board API (see docs/jobboard.md for layout, protocol and guarantees).

One JobBoard per kazoo client. Producers call post/wait; conductors call claim_next (or claim)
and then complete, release, park or trash with their Claim; operators list, trash, restore,
wake and update. Connection events (SUSPENDED/RECONNECTED/LOST/NEW_SESSION) and claim
notifications are delivered on the board's own event thread.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Collection
from typing import Any

from kazoo.client import KazooClient
from kazoo.security import ACL, OPEN_ACL_UNSAFE

from jobboard.errors import AlreadyClaimed, ClaimConflict, InvalidInput, InvalidJob, JobNotFound
from jobboard.model import Claim, Job, Outcome
from jobboard.protocol.admin import Admin
from jobboard.protocol.claims import ClaimProtocol
from jobboard.protocol.context import BoardContext, describe_acl, same_acl, translate_errors
from jobboard.protocol.events import BoardListener, EventDispatcher
from jobboard.protocol.held import HeldClaims
from jobboard.protocol.naming import BoardPaths, check_name
from jobboard.protocol.outcomes import Outcomes
from jobboard.protocol.posting import Poster
from jobboard.protocol.presence import Presence
from jobboard.protocol.reading import Reader
from jobboard.protocol.watching import BoardWatcher
from jobboard.zk import lease
from jobboard.zk.connect import TLSOptions, connect, redact_logger
from jobboard.zk.session import SessionTracker

STAMPEDE_WIDTH = 8
_SKIPPABLE = (AlreadyClaimed, JobNotFound, InvalidJob, ClaimConflict)


class JobBoard:
    """The job board under `root` on a started kazoo client.

    `acl` defaults to the client's `default_acl` (set by `connect(credentials=...)`), else open.
    An `acl` given for a client without a `default_acl` becomes the client's `default_acl` (kazoo
    recipes such as the keeper's Lock create their nodes with it); one that differs from the
    client's `default_acl` is refused (InvalidInput).
    With an ACL other than open, the root and the areas must carry it if they exist already:
    AclMismatch names the first that does not, unless `repair_acls=True`, which sets the board's
    ACL on it and every node below it (logged).
    `op_timeout` bounds how long an operation waits for a lost connection to come back.
    """

    def __init__(
        self,
        client: KazooClient,
        root: str = "/conductor",
        *,
        acl: list[ACL] | None = None,
        op_timeout: float | None = None,
        stampede_width: int = STAMPEDE_WIDTH,
        repair_acls: bool = False,
    ) -> None:
        paths = BoardPaths(root)
        lease.install(client)  # a no-op for clients made by jobboard.zk.connect
        redact_logger(client.logger)  # kazoo logs ACLs (digest hashes) at DEBUG
        acl = _board_acl(client, acl)
        events = EventDispatcher()
        session = SessionTracker(client, paths, acl, events)
        session_timeout = client._session_timeout / 1000
        timeout = op_timeout if op_timeout is not None else max(30.0, 3 * session_timeout)
        self._ctx = BoardContext(client, paths, acl, session, events, timeout, repair_acls)
        self._owns_client = False
        self._stampede_width = max(1, stampede_width)
        self._random = random.Random()
        self._read_ahead_lock = threading.Lock()
        self._read_ahead: tuple[str, Any] | None = None
        self._claims_next = False  # claim_next was used: read ahead when a claim ends
        self._closed = False
        self._held = HeldClaims(self._ctx)
        self._watcher = BoardWatcher(self._ctx, self._held)
        self._claims = ClaimProtocol(self._ctx, self._held, self._watcher.start)
        self._reader = Reader(self._ctx)
        self._poster = Poster(self._ctx, self._reader)
        self._admin = Admin(self._ctx)
        self._outcomes = Outcomes(self._ctx)
        self._presence = Presence(self._ctx)
        self._member_folders: set[str] = set()
        session.on_lost(lambda: self._held.lose_all("the ZooKeeper session was lost (expired)"))
        self._create_folders()

    @classmethod
    def connect(
        cls,
        hosts: str,
        root: str = "/conductor",
        *,
        session_timeout: float = 10.0,
        credentials: str | None = None,
        tls: TLSOptions | None = None,
        start_timeout: float = 30.0,
        **board_kwargs: Any,
    ) -> JobBoard:
        """Connect a client of the board's own (closed by `close()`) and open the board;
        BoardUnavailable if ZooKeeper cannot be reached within `start_timeout` seconds."""
        client = connect(hosts, session_timeout=session_timeout, credentials=credentials, tls=tls,
                         start_timeout=start_timeout)
        try:
            board = cls(client, root, **board_kwargs)
        except BaseException:
            client.stop()
            client.close()
            raise
        board._owns_client = True
        return board

    @translate_errors
    def _create_folders(self) -> None:
        for path in [self._ctx.paths.root, *self._ctx.paths.areas()]:
            self._ctx.ensure_folder(path)

    @translate_errors
    def ensure_folder(self, path: str) -> None:
        """Create a folder below the root with the board's ACL, or check (or, with
        repair_acls, repair) the ACL of an existing one: for components that keep nodes of
        their own under the root (the deadline keeper, completion intents)."""
        if not path.startswith(self._ctx.paths.root + "/"):
            raise InvalidInput(f"{path} is not below the board root {self._ctx.paths.root}")
        self._ctx.ensure_folder(path)

    @property
    def acl(self) -> list[ACL]:
        """The ACL every node the board (and its components) creates carries."""
        return list(self._ctx.acl)

    def close(self) -> None:
        """Stop watching and delivering events (and close the client if the board made it).

        Threads blocked in claim_next return None."""
        view = self._watcher.view
        with view.condition:
            self._closed = True
            view.condition.notify_all()
        self._watcher.stop()
        self._ctx.session.close()
        self._ctx.events.close()
        if self._owns_client:
            self._ctx.client.stop()
            self._ctx.client.close()

    def __enter__(self) -> JobBoard:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- properties --------------------------------------------------------------------------
    @property
    def client(self) -> KazooClient:
        return self._ctx.client

    @property
    def paths(self) -> BoardPaths:
        return self._ctx.paths

    @property
    def session_id(self) -> int | None:
        """The current ZooKeeper session id (claims record the session they were taken in)."""
        return self._ctx.session.session_id

    @property
    def connected(self) -> bool:
        """False while SUSPENDED or LOST: a conductor should start no new task then."""
        return self._ctx.session.connected

    def session_alive(self) -> bool:
        """True while the session is provably alive: connected, and a reply to one of our
        sends arrived recently enough that the server cannot have expired it (jobboard.zk.lease).
        Ask right before acting on a claim; False just after this process was stopped (SIGSTOP,
        GC pause) past its session timeout, even before kazoo notices."""
        return self._ctx.session.connected and lease.alive(self._ctx.client)

    def interrupt(self) -> None:
        """Wake every thread blocked in claim_next so it re-checks its `stop` event."""
        view = self._watcher.view
        with view.condition:
            view.generation += 1
            view.condition.notify_all()

    @property
    def watcher(self) -> BoardWatcher:
        """The incremental view (started by the first claim; see `watch()`)."""
        return self._watcher

    def watch(self, timeout: float | None = None) -> None:
        """Start the claimable view now (the first claim otherwise does it)."""
        translate_errors(self._watcher.start)(timeout)

    def add_listener(self, listener: BoardListener) -> None:
        """Call `listener(BoardEvent)` on the board's event thread for every board event."""
        self._ctx.events.add_listener(listener)

    def remove_listener(self, listener: BoardListener) -> None:
        self._ctx.events.remove_listener(listener)

    # -- producers ---------------------------------------------------------------------------
    @translate_errors
    def post(
        self,
        name: str,
        flow: str,
        inputs: dict[str, Any] | None = None,
        priority: int = 0,
        key: str | None = None,
    ) -> Job:
        """Post a job; with `key`, a second post of the same key returns the first job."""
        return self._poster.post(name, flow, {} if inputs is None else inputs, priority, key)

    @translate_errors
    def wait(self, job_id: str, timeout: float | None = None) -> Outcome:
        """Block until the job is completed or trashed (watch-driven); WaitTimeout after
        `timeout` seconds."""
        return self._outcomes.wait(job_id, timeout)

    @translate_errors
    def purge_outcomes(self, older_than: float) -> int:
        """Delete outcomes (and their idempotency keys) completed over `older_than` s ago."""
        return self._outcomes.purge(older_than)

    # -- reading -----------------------------------------------------------------------------
    @translate_errors
    def jobs(self) -> list[Job]:
        """Every job on the board: UNCLAIMED, CLAIMED, PARKED; priority first, then FIFO."""
        return self._reader.pending_and_parked()

    @translate_errors
    def get(self, job_id: str) -> Job:
        """One job in any state (also COMPLETED and TRASHED)."""
        return self._reader.get(job_id)

    @translate_errors
    def parked(self) -> list[Job]:
        return self._reader.parked()

    @translate_errors
    def trashed(self) -> list[Job]:
        return self._reader.trashed()

    @translate_errors
    def get_trashed(self, job_id: str) -> Job:
        return self._reader.get_trashed(job_id)

    # -- conductors --------------------------------------------------------------------------
    @translate_errors
    def claim(self, job_id: str, owner: str) -> Claim:
        """Claim one job for `owner` (a member id); AlreadyClaimed names the current owner."""
        return self._claims.claim(job_id, owner)

    @translate_errors
    def claim_next(
        self,
        owner: str,
        timeout: float | None = None,
        stop: threading.Event | None = None,
        exclude: Collection[str] = (),
    ) -> Claim | None:
        """Claim the best claimable job, blocking until there is one.

        None after `timeout` seconds, once `stop` is set or the board is closed. Picks among
        the first few jobs of the best priority band in a random order, so claimers do not all
        race for one job. `exclude`: job ids not to claim now (e.g. ones backing off). Call
        `interrupt()` after setting `stop` to wake a blocked call at once.
        """
        check_name("owner id", owner)
        if self._closed:
            return None
        self._watcher.start()
        self._claims_next = True
        view = self._watcher.view
        deadline = None if timeout is None else time.monotonic() + timeout
        excluded: set[str] = set()
        excluded_at = -1
        while True:
            with view.condition:
                while True:
                    if self._closed or (stop is not None and stop.is_set()):
                        return None
                    if excluded and view.generation != excluded_at:
                        excluded.clear()
                    skip = excluded | self._held.not_claimable_by_us() | set(exclude)
                    candidates = view.candidates(self._stampede_width, skip)
                    if candidates:
                        break
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        return None
                    view.condition.wait(remaining)  # interrupt() wakes it for `stop`
                generation = view.generation
            self._random.shuffle(candidates)
            read_ahead = self._take_read_ahead(candidates)
            for job_id in candidates:
                try:
                    return self._claims.claim(
                        job_id, owner, name_owner=False, read_ahead=read_ahead
                    )
                except _SKIPPABLE:
                    read_ahead = None
                    excluded.add(job_id)
                    excluded_at = generation

    def _start_read_ahead(self) -> None:
        """A claim is ending and this board claims with claim_next: read the document of the
        job it will probably pick next, in the same round trip as the ending operation."""
        if not self._claims_next:
            return
        ours = self._held.not_claimable_by_us()
        candidates = self._watcher.view.candidates(self._stampede_width, ours)
        if candidates:
            job_id = self._random.choice(candidates)
            read = self._ctx.client.get_async(self._ctx.paths.job(job_id))
            with self._read_ahead_lock:
                self._read_ahead = (job_id, read)

    def _take_read_ahead(self, candidates: list[str]) -> Any:
        """The read-ahead result if its job is among `candidates` (moved first), else None."""
        with self._read_ahead_lock:
            read_ahead, self._read_ahead = self._read_ahead, None
        if read_ahead is None or read_ahead[0] not in candidates:
            return None
        candidates.remove(read_ahead[0])
        candidates.insert(0, read_ahead[0])
        return read_ahead[1]

    @translate_errors
    def release(self, claim: Claim, updates: dict[str, Any] | None = None) -> None:
        """Give the job back, merging `updates` into its document."""
        self._claims.release(claim, updates)

    @translate_errors
    def complete(self, claim: Claim, outcome: dict[str, Any]) -> None:
        """Finish the job with `outcome`; ClaimLost (nothing changed) if the claim is gone."""
        self._start_read_ahead()
        self._claims.complete(claim, outcome)

    @translate_errors
    def park(
        self, claim: Claim, until: float | None = None, updates: dict[str, Any] | None = None
    ) -> None:
        """Park the held job (not claimable) until `wake`; `until` is a deadline to enforce."""
        self._start_read_ahead()
        self._claims.park(claim, until, updates)

    @translate_errors
    def wake(self, job_id: str, updates: dict[str, Any] | None = None) -> bool:
        """Make a parked job claimable again; False if it was not parked."""
        return self._admin.wake(job_id, updates)

    @translate_errors
    def trash(
        self, job_id: str, reason: str, claim: Claim | None = None, force: bool = False
    ) -> None:
        """Dead-letter a job: with the caller's claim, or as an operator (a job claimed by
        someone else is refused unless `force`)."""
        if claim is not None:
            if claim.job_id != job_id:
                raise ValueError(f"claim is for job {claim.job_id}, not {job_id}")
            self._claims.trash(claim, reason)
        else:
            self._admin.trash(job_id, reason, force)

    @translate_errors
    def restore(self, job_id: str, document: dict[str, Any] | None = None) -> Job:
        """Put a trashed job back on the board (same id, attempts reset)."""
        return self._admin.restore(job_id, document)

    @translate_errors
    def update(self, job_id: str, updates: dict[str, Any]) -> Job:
        """Merge `updates` into a pending or parked job (e.g. a cancel flag)."""
        return self._admin.update(job_id, updates)

    def held_claims(self) -> list[Claim]:
        """Claims this board holds right now."""
        return self._held.all()

    # -- presence ----------------------------------------------------------------------------
    @translate_errors
    def register(
        self, kind: str, member_id: str, info: dict[str, Any] | None = None, wait: float = 0.0
    ) -> dict[str, Any]:
        """Register presence as `<root>/<kind>/<member_id>`, renewed in every new session."""
        folder = self._ctx.paths.members(kind)
        if self._ctx.secured and folder not in self._member_folders:
            self._ctx.ensure_folder(folder)
            self._member_folders.add(folder)
        return self._presence.register(kind, member_id, info, wait)

    @translate_errors
    def unregister(self, kind: str, member_id: str) -> None:
        self._presence.unregister(kind, member_id)

    @translate_errors
    def members(self, kind: str) -> list[dict[str, Any]]:
        return self._presence.members(kind)


def _board_acl(client: KazooClient, acl: list[ACL] | None) -> list[ACL]:
    """The board's ACL: `acl`, else the client's default_acl, else open. kazoo recipes (the
    keeper's Lock) create nodes with the client's default_acl, so a given `acl` becomes the
    default of a client that has none, and one differing from the client's is refused."""
    default = list(client.default_acl or [])
    if not acl:
        return default or list(OPEN_ACL_UNSAFE)
    acl = list(acl)
    if not default:
        client.default_acl = acl
    elif not same_acl(default, acl):
        raise InvalidInput(
            f"acl=[{describe_acl(acl)}] differs from the client's default_acl "
            f"[{describe_acl(default)}], which kazoo uses for nodes the board does not create "
            "itself (e.g. the deadline keeper's lock): pass the same ACL, or only one of them"
        )
    return acl
