"""Completing a delegation from outside: the one function behind the CLI, Python and HTTP.

    callbacks = Callbacks(store, board)
    report = callbacks.complete(token, result={"approved": True})   # or error="rejected"

Steps, in this order (docs/delegation.md explains why each is safe):
1. check the completion and the token's shape (nothing is looked up for a malformed token);
2. find the delegation by the token's hash and compare in constant time (UnknownDelegation);
3. refuse if already completed, if the task already has an outcome (TaskFinished), or if an
   error is sent with an attempt that was given up (AttemptSuperseded);
4. record a completion intent in ZooKeeper (jobboard.recipes.Intents in `<root>/completions`:
   a persistent node with an ephemeral `~live` twin of this process's session);
5. compare-and-set the outcome into the delegation row: exactly once;
6. wake the job if it is parked, else notify its holder through the job document (the running
   conductor applies the completion at once); a job no longer on the board needs nothing;
7. remove the intent. A crash between 4 and 7 is finished by the deadline keeper.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from conductor import jobfields
from conductor.delegation.errors import (
    AttemptSuperseded,
    DelegationFailed,
    InvalidCompletion,
    TaskFinished,
)
from conductor.engine.delegated import tokens
from conductor.flow.errors import Cancelled
from conductor.flow.retry import type_name
from jobboard.board import JobBoard
from jobboard.errors import BoardError, BoardUnavailable, InvalidJob, JobNotFound
from jobboard.model import JobState
from jobboard.recipes.intents import Intent, Intents
from persistence import jsonvalue
from persistence.contract import ExecutionStore
from persistence.errors import (
    DelegationAlreadyCompleted,
    NotSerializable,
    StoreUnavailable,
    UnknownDelegation,
)
from persistence.records import AtomState, DelegationRecord, Failure

log = logging.getLogger("conductor.delegation")

MAX_ERROR_CHARS = 8000
_NUDGE_TRIES = 6
_OUTCOME_STATES = frozenset({AtomState.SUCCESS, AtomState.FAILURE, AtomState.REVERTING,
                             AtomState.REVERTED, AtomState.REVERT_FAILURE, AtomState.IGNORED})
_UNKNOWN = "no delegation has that token"
_CANCELLED = type_name(Cancelled)
_MISSING = object()


@dataclass(frozen=True)
class CompletionReport:
    """A recorded completion: which task of which job, and what happened to the job
    ("woken": it was parked and is claimable again; "notified": it is pending or running and
    its holder was told; "gone": it is no longer on the board; "deferred": ZooKeeper could not
    be reached after recording, the deadline keeper will wake it)."""

    job_id: str
    execution_id: str
    task: str
    attempt: int
    outcome: str  # "result" or "error"
    job: str

    def to_json(self) -> dict[str, Any]:
        return {"status": "completed", "job": self.job_id, "execution": self.execution_id,
                "task": self.task, "attempt": self.attempt, "outcome": self.outcome,
                "job_state": self.job}


class Callbacks:
    """Completes delegations (thread-safe; one per process is enough)."""

    def __init__(self, store: ExecutionStore, board: JobBoard,
                 intents: Intents | None = None) -> None:
        self.store = store
        self.board = board
        self.intents = intents or Intents(board, board.paths.completions)

    def complete(self, token: str, *, result: Any = _MISSING, error: str | None = None
                 ) -> CompletionReport:
        """Complete the delegation of `token` with a `result` (any JSON) or an `error`
        message. Raises InvalidCompletion, UnknownDelegation, DelegationAlreadyCompleted (or
        its TaskFinished / AttemptSuperseded), StoreUnavailable or BoardUnavailable; the
        token never appears in an error or a log line."""
        outcome = completion_outcome(result, error)
        row = self.lookup(token)
        self._check_open(row, is_error="failure" in outcome)
        if not self.board.session_alive():
            raise BoardUnavailable("ZooKeeper session not provably alive: completion not "
                                   "recorded; try again")
        intent = self.intents.open(row.job_id)
        try:
            self.store.complete_delegation(row.token_hash, outcome)
        except StoreUnavailable:
            self.intents.hand_over(intent)  # it may have been committed: the keeper wakes
            raise
        except BaseException:
            self.intents.close(intent)
            raise
        job_state = self._wake_or_notify(intent)
        log.info("completed the delegation of task %r attempt %d in job %s (%s; job %s)",
                 row.atom_name, row.attempt, row.job_id, next(iter(outcome)), job_state)
        return CompletionReport(row.job_id, row.execution_id, row.atom_name, row.attempt,
                                "error" if "failure" in outcome else "result", job_state)

    def lookup(self, token: str) -> DelegationRecord:
        """The delegation of `token` (UnknownDelegation for anything else, malformed or not)."""
        if not tokens.well_formed(token):
            raise UnknownDelegation(_UNKNOWN)
        row = self.store.delegation(tokens.token_hash(token))
        if tokens.kind_of(row) is not tokens.RowKind.TOKEN or not tokens.matches(
                row.token_hash, token):
            raise UnknownDelegation(_UNKNOWN)
        return row

    def _check_open(self, row: DelegationRecord, *, is_error: bool) -> None:
        where = f"task {row.atom_name!r} of job {row.job_id}"
        if row.completed_at is not None:
            raise DelegationAlreadyCompleted(
                f"this delegation of {where} (attempt {row.attempt}) was already completed")
        execution = self.store.load(row.execution_id)
        if execution.state.finished:
            raise TaskFinished(f"{where} already has an outcome (its execution ended "
                               f"{execution.state.value}{_cancelled(execution.failure)})")
        atom = execution.atoms.get(row.atom_name)
        if atom is None:
            return
        if atom.state in _OUTCOME_STATES:
            raise TaskFinished(f"{where} already has an outcome "
                               f"({atom.state.value}{_cancelled(atom.failure)})")
        if is_error and row.attempt < atom.attempt:
            raise AttemptSuperseded(
                f"{where}: attempt {row.attempt} was given up (attempt {atom.attempt} is under "
                "way); an error for it is not recorded (a result still completes the task)")

    def _wake_or_notify(self, intent: Intent) -> str:
        try:
            state = nudge(self.board, intent.job_id, intent.nonce)
        except BoardError as exc:
            log.warning("completion of job %s recorded, but the job could not be woken now "
                        "(%s); the deadline keeper will", intent.job_id, exc)
            self.intents.hand_over(intent)
            return "deferred"
        self.intents.close(intent)
        return state


def _cancelled(failure: Failure | None) -> str:
    return ": the execution was cancelled" if failure is not None and failure.type == _CANCELLED \
        else ""


def completion_outcome(result: Any = _MISSING, error: str | None = None) -> dict[str, Any]:
    """The outcome to store for a completion: {"result": value} or {"failure": {...}}."""
    if (result is _MISSING) == (error is None):
        raise InvalidCompletion("a completion carries exactly one of a result and an error")
    if error is not None:
        if not isinstance(error, str) or not error.strip():
            raise InvalidCompletion("the error must be a non-empty message")
        if len(error) > MAX_ERROR_CHARS:
            raise InvalidCompletion(
                f"the error message has {len(error)} characters; the limit is {MAX_ERROR_CHARS}")
        failure = Failure(type_name(DelegationFailed), tokens.redact(error))
        return {"failure": failure.to_json()}
    try:
        return {"result": jsonvalue.check(result, what="the completion's result")}
    except NotSerializable as exc:
        raise InvalidCompletion(str(exc)) from None


def nudge(board: JobBoard, job_id: str, marker: str) -> str:
    """Make the job look at its delegations again: wake it if parked, else notify its holder
    through the job document. Returns "woken", "notified" or "gone" (completed or trashed:
    nothing to wake; a restored job reads its delegations when it is claimed)."""
    for _ in range(_NUDGE_TRIES):
        try:
            if board.wake(job_id):
                return "woken"
        except InvalidJob:
            return "gone"  # its parked entry was garbage: dead-lettered with the reason
        try:
            job = board.update(job_id, jobfields.updates({jobfields.COMPLETION: marker}))
        except JobNotFound:
            if _finished(board, job_id):
                return "gone"
            continue  # between places: look again
        if job.state is not JobState.PARKED:
            return "notified"
        # parked between our two looks: wake it
    raise BoardUnavailable(f"job {job_id} kept moving; the deadline keeper will wake it")


def _finished(board: JobBoard, job_id: str) -> bool:
    try:
        return board.get(job_id).state in (JobState.COMPLETED, JobState.TRASHED)
    except JobNotFound:
        return True
