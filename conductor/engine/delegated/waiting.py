"""What a delegated attempt is waiting for, and when it is settled: the rules the runner applies.

The runner keeps the execution's delegation rows (read from the store when it resumes, when a
task returns Delegated, when a completion is announced, and before it parks) and asks, for each
atom saved DELEGATED at attempt `a`:

1. A completed token of attempt `a` settles it with that outcome (result, or DelegationFailed).
   A completion recorded before the runner looked wins over a deadline that passed meanwhile:
   the third party was told its completion was accepted.
2. Else a RESULT completed with the token of an earlier attempt of the same run of the task
   (attempt >= the round's first attempt: a sub-flow retry starts a new run) settles it with
   that result: every token issued for a task stays valid until the task has an outcome, so a
   retry never strands the token a third party already holds. Errors sent with an older
   attempt's token are ignored (they would fail the wrong attempt; the front ends refuse them).
3. Else the earliest passed deadline of attempt `a`'s open rows: a timer succeeds (result None),
   a token's deadline or a bare deadline fails the attempt with DelegationTimeout.
Among several candidates the earliest completion (then the lowest row id) wins.

An attempt about to START whose task already has such a late result is settled the same way
without calling the task again (`late_result`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from conductor.engine.delegated.errors import DelegationFailed, DelegationTimeout
from conductor.engine.delegated.tokens import RowKind, kind_of
from conductor.flow.retry import exception_kinds, type_name
from persistence.contract import ExecutionStore
from persistence.records import AtomRecord, AtomState, DelegationRecord, Failure

_FAILED_KINDS = exception_kinds(DelegationFailed("x"))
_TIMEOUT_KINDS = exception_kinds(DelegationTimeout("x"))


@dataclass(frozen=True)
class Verdict:
    """How a delegated attempt ends: a result, or a failure (with the names it answers to)."""

    name: str
    attempt: int
    why: str  # "completed", "late result", "timer", "deadline"
    result: Any = None
    failure: Failure | None = None
    kinds: tuple[str, ...] = ()
    row: int | None = None  # id of the delegation row that decided


def outcome_verdict(name: str, attempt: int, row: DelegationRecord, why: str) -> Verdict:
    """The verdict carried by a completed row's outcome."""
    outcome = row.outcome if isinstance(row.outcome, dict) else {}
    failure = outcome.get("failure")
    if isinstance(failure, dict):
        return Verdict(name, attempt, why, failure=Failure.from_json(failure),
                       kinds=_FAILED_KINDS, row=row.id)
    return Verdict(name, attempt, why, result=outcome.get("result"), row=row.id)


def is_result(row: DelegationRecord) -> bool:
    return row.completed_at is not None and isinstance(row.outcome, dict) and (
        "failure" not in row.outcome)


def _first_completed(rows: list[DelegationRecord]) -> DelegationRecord | None:
    done = [r for r in rows if r.completed_at is not None and kind_of(r) is RowKind.TOKEN]
    return min(done, key=lambda r: (r.completed_at or 0.0, r.id), default=None)


def verdict(name: str, rec: AtomRecord, first_attempt: int, rows: list[DelegationRecord],
            now: float) -> Verdict | None:
    """The verdict for atom `name` if it is DELEGATED and settled by its rows (see above)."""
    if rec.state is not AtomState.DELEGATED:
        return None
    attempt = rec.attempt
    own = [r for r in rows if r.attempt == attempt]
    done = _first_completed(own)
    if done is not None:
        return outcome_verdict(name, attempt, done, "completed")
    late = late_result(name, first_attempt, attempt, rows)
    if late is not None:
        return late
    expired = [r for r in own if r.completed_at is None and r.deadline is not None
               and r.deadline <= now]
    if not expired:
        return None
    # Earliest deadline first; at the same instant a failing deadline beats a timer.
    first = min(expired, key=lambda r: (r.deadline or 0.0, kind_of(r) is RowKind.TIMER, r.id))
    if kind_of(first) is RowKind.TIMER:
        return Verdict(name, attempt, "timer", result=None, row=first.id)
    message = (f"task {name!r} attempt {attempt}: its delegation was not completed by its "
               f"deadline ({_stamp(first.deadline)})")
    return Verdict(name, attempt, "deadline",
                   failure=Failure(type_name(DelegationTimeout), message), kinds=_TIMEOUT_KINDS,
                   row=first.id)


def late_result(name: str, first_attempt: int, attempt: int, rows: list[DelegationRecord]
                ) -> Verdict | None:
    """A result completed with the token of an earlier attempt of this run of the task."""
    late = [r for r in rows if first_attempt <= r.attempt < attempt and is_result(r)
            and kind_of(r) is RowKind.TOKEN]
    first = min(late, key=lambda r: (r.completed_at or 0.0, r.id), default=None)
    return None if first is None else outcome_verdict(name, attempt, first, "late result")


def next_deadline(rec: AtomRecord, rows: list[DelegationRecord]) -> float | None:
    """When the DELEGATED attempt `rec` must be looked at again (its earliest open deadline)."""
    if rec.state is not AtomState.DELEGATED:
        return None
    return min((r.deadline for r in rows if r.attempt == rec.attempt and r.completed_at is None
                and r.deadline is not None), default=None)


def _stamp(when: float | None) -> str:
    if when is None:
        return "-"
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when))


class DelegationWaits:
    """The delegation rows of one execution as its runner last read them, by atom."""

    def __init__(self, store: ExecutionStore, execution_id: str,
                 deadline_floor: float | None = None) -> None:
        self._store = store
        self._execution_id = execution_id
        self._floor = deadline_floor
        self.rows: dict[str, list[DelegationRecord]] = {}
        self.completed_seen: frozenset[int] = frozenset()
        self._unsaved: dict[str, DelegationRecord] = {}  # rows of ours not read back yet

    def refresh(self) -> None:
        """Read every delegation row of the execution (one query)."""
        rows = self._store.delegations(self._execution_id)
        for row in rows:
            self._unsaved.pop(row.token_hash, None)
        by_atom: dict[str, list[DelegationRecord]] = {}
        for row in [*rows, *self._unsaved.values()]:
            by_atom.setdefault(row.atom_name, []).append(row)
        self.rows = by_atom
        self.completed_seen = frozenset(r.id for r in rows if r.completed_at is not None)

    def add(self, row: DelegationRecord) -> None:
        """A row this runner is saving itself (kept until a refresh reads it back)."""
        self._unsaved[row.token_hash] = row
        self.rows.setdefault(row.atom_name, []).append(row)

    def effective_now(self, now: float) -> float:
        """`now`, or the time a deadline keeper already judged passed if that is later (so a
        conductor whose clock lags the keeper's does not park the job again at once)."""
        return now if self._floor is None else max(now, self._floor)

    def verdicts(self, records: dict[str, AtomRecord], first_attempt: Any, now: float
                 ) -> list[Verdict]:
        """Verdicts for every DELEGATED atom that is settled now."""
        now = self.effective_now(now)
        found = []
        for name, rows in self.rows.items():
            rec = records.get(name)
            if rec is None or rec.state is not AtomState.DELEGATED:
                continue
            decided = verdict(name, rec, int(first_attempt(name)), rows, now)
            if decided is not None:
                found.append(decided)
        return found

    def late_result(self, name: str, first_attempt: int, attempt: int) -> Verdict | None:
        rows = self.rows.get(name)
        return None if not rows else late_result(name, first_attempt, attempt, rows)

    def next_deadline(self, records: dict[str, AtomRecord]) -> float | None:
        """The earliest open deadline of a DELEGATED attempt (None: none)."""
        found = None
        for name, rows in self.rows.items():
            rec = records.get(name)
            if rec is None:
                continue
            due = next_deadline(rec, rows)
            if due is not None and (found is None or due < found):
                found = due
        return found

    def waits_on_nothing(self, name: str, attempt: int, first_attempt: int) -> bool:
        """True when attempt `attempt` of `name` has no row that could ever settle it (no
        delegation of this attempt, no open token of an earlier attempt of this run)."""
        return not any(r.attempt == attempt or (first_attempt <= r.attempt < attempt
                                                and kind_of(r) is RowKind.TOKEN)
                       for r in self.rows.get(name, ()))
