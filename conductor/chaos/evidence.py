"""What a chaos run leaves behind, as plain records: the checker's only input.

Three independent sources are read once the run is over: the job board (how each job ended),
the database (each execution, its atoms and its ownership history) and the task ledger (every
task attempt a conductor started, appended by `conductor run --task-ledger`). The runner adds
its own log of chaos events (which process it killed, paused or resumed, and when). Everything
is plain data so the checker can be tested on crafted histories.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from conductor.ledger import read_ledger
from jobboard.board import JobBoard
from jobboard.errors import JobNotFound
from jobboard.model import JobState
from jobboard.recipes import outcome_entry
from persistence.contract import ExecutionStore

# Kinds of chaos events (ChaosEvent.kind).
KILL = "kill"  # SIGKILL of a conductor
PAUSE = "pause"  # SIGSTOP of a conductor
RESUME = "resume"  # SIGCONT of a paused conductor
START = "start"  # a conductor (re)started by the runner
LEADER_KILL = "leader-kill"  # SIGKILL of the ZooKeeper leader
SERVER_RESTART = "server-restart"  # a killed ZooKeeper server started again


@dataclass(frozen=True)
class Start:
    """One task attempt started by a conductor (one task-ledger line)."""

    job: str
    task: str
    attempt: int
    pid: int
    t: float
    action: str = "execute"  # or "revert"

    @classmethod
    def from_json(cls, entry: dict[str, Any]) -> Start:
        return cls(job=str(entry["job"]), task=str(entry["task"]), attempt=int(entry["attempt"]),
                   pid=int(entry["pid"]), t=float(entry["t"]),
                   action=str(entry.get("action", "execute")))


@dataclass(frozen=True)
class Owner:
    """One take-over of a job's execution: the claim's epoch, who, when."""

    epoch: int
    owner: str  # "<conductor name>@<host>:<pid>", as the conductor records it
    taken_at: float

    @property
    def pid(self) -> int | None:
        _, _, pid = self.owner.rpartition(":")
        return int(pid) if pid.isdigit() else None

    @property
    def name(self) -> str:
        return self.owner.partition("@")[0]


@dataclass(frozen=True)
class SavedAtom:
    """An atom's last saved row."""

    name: str
    kind: str
    state: str
    attempt: int
    started_at: float | None
    finished_at: float | None


@dataclass
class JobEvidence:
    """Everything known about one posted job after the run."""

    job: str
    board_state: str  # UNCLAIMED, CLAIMED, PARKED, COMPLETED, TRASHED or MISSING
    outcome: dict[str, Any] | None = None  # what the conductor completed it with
    completed_at: float | None = None
    completed_epoch: int | None = None  # the epoch of the claim that completed it
    completed_by: str | None = None  # that claim's owner (a conductor name)
    reason: str | None = None  # TRASHED
    execution_id: str | None = None
    execution_state: str | None = None
    execution_epoch: int | None = None
    execution_owner: str | None = None
    finished_at: float | None = None
    atoms: dict[str, SavedAtom] = field(default_factory=dict)
    owners: list[Owner] = field(default_factory=list)  # oldest first


@dataclass(frozen=True)
class ChaosEvent:
    """Something the runner did to a process: kind (see the constants), target (conductor name
    or "zk-<index>"), the process id, and when (time.time())."""

    t: float
    kind: str
    target: str
    pid: int | None = None


@dataclass
class Evidence:
    """A whole run: the posted jobs, what became of them, every start and every chaos event."""

    jobs: dict[str, JobEvidence]
    starts: list[Start]
    events: list[ChaosEvent]
    posted_at: float  # first post
    expected_state: str = "SUCCESS"
    successors: dict[str, frozenset[str]] = field(default_factory=dict)
    """Per task name, the tasks that start only once its SUCCESS is saved (from the flow's
    graph; empty when unknown): a start of one proves the task's success was saved."""


def read_starts(path: str | os.PathLike[str]) -> list[Start]:
    """The task ledger's lines as starts, in time order."""
    return sorted((Start.from_json(entry) for entry in read_ledger(path)), key=lambda s: s.t)


def collect(board: JobBoard, store: ExecutionStore, job_ids: Iterable[str],
            ledger: str | os.PathLike[str], *, events: list[ChaosEvent], posted_at: float,
            expected_state: str = "SUCCESS",
            successors: dict[str, frozenset[str]] | None = None) -> Evidence:
    """Read the board, the database and the ledger for `job_ids`."""
    jobs = {job_id: _job_evidence(board, store, job_id) for job_id in job_ids}
    return Evidence(jobs=jobs, starts=read_starts(ledger), events=list(events),
                    posted_at=posted_at, expected_state=expected_state,
                    successors=dict(successors or {}))


def _job_evidence(board: JobBoard, store: ExecutionStore, job_id: str) -> JobEvidence:
    try:
        job = board.get(job_id)
    except JobNotFound:
        evidence = JobEvidence(job_id, "MISSING")
    else:
        evidence = JobEvidence(job_id, job.state.value, reason=job.reason)
        if job.state is JobState.COMPLETED:
            _read_outcome_entry(board, evidence)
    execution = store.find_by_job(job_id)
    if execution is None:
        return evidence
    evidence.execution_id = execution.id
    evidence.execution_state = execution.state.value
    evidence.execution_epoch = execution.epoch
    evidence.execution_owner = execution.owner
    evidence.finished_at = execution.finished_at
    evidence.atoms = {
        name: SavedAtom(name, atom.kind, atom.state.value, atom.attempt, atom.started_at,
                        atom.finished_at)
        for name, atom in execution.atoms.items()
    }
    evidence.owners = [Owner(o.epoch, o.owner, o.taken_at) for o in store.owners(execution.id)]
    return evidence


def _read_outcome_entry(board: JobBoard, evidence: JobEvidence) -> None:
    """The outcome entry as stored (docs/jobboard.md: {job, outcome, completed_at, claim})."""
    entry = outcome_entry(board, evidence.job)
    outcome, claim = entry.get("outcome"), entry.get("claim") or {}
    evidence.outcome = outcome if isinstance(outcome, dict) else None
    evidence.completed_at = _number(entry.get("completed_at"))
    epoch = claim.get("epoch")
    evidence.completed_epoch = epoch if isinstance(epoch, int) else None
    evidence.completed_by = str(claim["owner"]) if claim.get("owner") is not None else None


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, (int, float)) else None
