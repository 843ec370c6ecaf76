"""One job's history, indexed for the checks: who owned it when, and which owner made each start.

Ownership comes from the execution's take-overs (epoch, owner "<name>@<host>:<pid>", taken_at).
A start (a task-ledger line: job, task, attempt, pid, t) belongs to the ownership of its pid
with the latest taken_at not after it. It is **late** when a newer owner (a higher epoch) had
taken the job over before it: the process that made it had lost the job.

A late start is **accepted** only as the resumed code of an attempt already in flight at the
take-over (its RUNNING state saved, its start not yet recorded when the process froze):
- its process was SIGSTOPped at the moment of that take-over (from the runner's event log);
- a newer owner started the same attempt again (it found the attempt RUNNING);
- no newer owner started any task it depends on (else that task had not succeeded at the
  take-over, so this one cannot have been RUNNING then: the stale owner went on working after
  resuming, the very failure fencing prevents).
Its result is fenced off. Any other late start means a stale owner started work.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from conductor.chaos.evidence import PAUSE, RESUME, ChaosEvent, JobEvidence, Owner, Start

TaskKey = tuple[str, int, str]  # (task, attempt, action)


class PauseLog:
    """When each process was stopped (SIGSTOP until SIGCONT), from the runner's events."""

    def __init__(self, events: list[ChaosEvent]) -> None:
        self._intervals: dict[int, list[tuple[float, float]]] = defaultdict(list)
        open_since: dict[int, float] = {}
        for event in sorted(events, key=lambda e: e.t):
            if event.pid is None:
                continue
            if event.kind == PAUSE:
                open_since[event.pid] = event.t
            elif event.kind == RESUME and event.pid in open_since:
                self._intervals[event.pid].append((open_since.pop(event.pid), event.t))
        for pid, since in open_since.items():  # never resumed (killed while stopped)
            self._intervals[pid].append((since, float("inf")))

    def paused_at(self, pid: int, t: float) -> bool:
        return any(start <= t <= end for start, end in self._intervals.get(pid, ()))


@dataclass
class Attributed:
    """A start with the ownership it ran under and, if late, the take-over it came after."""

    start: Start
    owner: Owner | None  # None: its process never owned the job before this start
    superseded_by: Owner | None = None  # the first newer owner that took over before it
    accepted_late: bool = False

    @property
    def late(self) -> bool:
        return self.superseded_by is not None

    @property
    def counts(self) -> bool:
        """A start that counts as work of its owner (not a frozen attempt's resumed code)."""
        return self.owner is not None and not self.late


@dataclass
class JobHistory:
    """A job's evidence with its starts attributed to owners."""

    evidence: JobEvidence
    owners: list[Owner]  # by taken_at
    starts: list[Attributed] = field(default_factory=list)  # by t

    @property
    def job(self) -> str:
        return self.evidence.job

    def by_key(self, counted_only: bool = True) -> dict[TaskKey, list[Attributed]]:
        grouped: dict[TaskKey, list[Attributed]] = defaultdict(list)
        for item in self.starts:
            if item.counts or not counted_only:
                start = item.start
                grouped[(start.task, start.attempt, start.action)].append(item)
        return grouped

    def owner_at(self, t: float) -> Owner | None:
        """The owner holding the job at time t (latest take-over not after t)."""
        current = None
        for owner in self.owners:
            if owner.taken_at <= t:
                current = owner
        return current

    def next_owner_after(self, owner: Owner) -> Owner | None:
        later = [o for o in self.owners if o.taken_at > owner.taken_at]
        return later[0] if later else None


def build(evidence: JobEvidence, starts: list[Start], pauses: PauseLog,
          predecessors: dict[str, frozenset[str]] | None = None) -> JobHistory:
    owners = sorted(evidence.owners, key=lambda o: (o.taken_at, o.epoch))
    history = JobHistory(evidence, owners)
    for start in sorted(starts, key=lambda s: s.t):
        mine = [o for o in owners if o.pid == start.pid and o.taken_at <= start.t]
        owner = mine[-1] if mine else None
        item = Attributed(start, owner)
        if owner is not None:
            newer = [o for o in owners if o.epoch > owner.epoch and o.taken_at < start.t]
            item.superseded_by = newer[0] if newer else None
        history.starts.append(item)
    for item in history.starts:
        if item.late:
            item.accepted_late = _resumed_in_flight(history, item, pauses,
                                                    (predecessors or {}).get(item.start.task,
                                                                             frozenset()))
    return history


def _resumed_in_flight(history: JobHistory, item: Attributed, pauses: PauseLog,
                       before: frozenset[str]) -> bool:
    assert item.owner is not None and item.superseded_by is not None
    if not pauses.paused_at(item.start.pid, item.superseded_by.taken_at):
        return False
    start, epoch = item.start, item.owner.epoch
    newer = [other.start for other in history.starts
             if other.counts and other.owner is not None and other.owner.epoch > epoch]
    rerun = any((s.task, s.attempt, s.action) == (start.task, start.attempt, start.action)
                for s in newer)
    return rerun and not any(s.task in before and s.action == "execute" for s in newer)


def predecessors_of(successors: dict[str, frozenset[str]]) -> dict[str, frozenset[str]]:
    """Per task, the tasks that must succeed before it starts (inverse of successors)."""
    found: dict[str, set[str]] = defaultdict(set)
    for task, after in successors.items():
        for later in after:
            found[later].add(task)
    return {task: frozenset(before) for task, before in found.items()}
