"""The chaos checks: from the evidence of a run, did every promise hold?

Each check returns its problems (empty = passed). docs/chaos.md explains each one; in short:

- completed: every posted job is COMPLETED on the board with the expected state, and its
  execution in the database ended in that state (none lost, none dead-lettered);
- completed_once: the claim that completed the job is the execution's last owner (same epoch,
  same conductor) and nobody took the execution over after the completion;
- no_rerun_after_success: a task attempt started twice only under successive owners (a higher
  epoch each time: it was in flight when its owner lost the job), never twice under one owner,
  never after its success was proven saved (a task that needs it started, or the execution's
  final state was saved);
- no_overlap: every start was made by a process that held the job (took it over before), and
  no process started anything after another took the job over, except the resumed code of a
  SIGSTOPped attempt that was already in flight at the take-over (see history.py);
- no_stale_write: take-overs raised the epoch every time; the execution's stored epoch and
  owner are the last take-over's; each saved task row was written during the ownership of the
  run that produced it; a successful execution has every task in SUCCESS;
- within_bound: the last job completed within the bound after the first post.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from conductor.chaos.evidence import Evidence, Start
from conductor.chaos.history import JobHistory, PauseLog, build, predecessors_of
from conductor.chaos.report import CheckResult, Report, summarize

CHECKS = ("completed", "completed_once", "no_rerun_after_success", "no_overlap",
          "no_stale_write", "within_bound")
FINAL_ATOM_STATES = frozenset({"SUCCESS", "REVERTED", "IGNORED", "FAILURE", "REVERT_FAILURE"})


@dataclass(frozen=True)
class CheckOptions:
    """What the checker needs beyond the evidence."""

    bound: float  # seconds from the first post to the last completion


def check(evidence: Evidence, options: CheckOptions,
          extra: list[CheckResult] | None = None) -> Report:
    """Run every check on the evidence; `extra` adds the runner's own checks (processes)."""
    pauses = PauseLog(evidence.events)
    starts_by_job: dict[str, list[Start]] = {job: [] for job in evidence.jobs}
    strays: list[Start] = []
    for start in evidence.starts:
        if start.job in starts_by_job:
            starts_by_job[start.job].append(start)
        else:
            strays.append(start)
    before = predecessors_of(evidence.successors)
    histories = [build(job, starts_by_job[job.job], pauses, before)
                 for job in evidence.jobs.values()]
    duplicates = _no_rerun_after_success(histories, evidence)
    results = [
        CheckResult("completed", _completed(evidence)),
        CheckResult("completed_once", _completed_once(histories)),
        CheckResult("no_rerun_after_success", duplicates),
        CheckResult("no_overlap", _no_overlap(histories)
                    + [f"start of a job that was not posted: {s}" for s in strays]),
        CheckResult("no_stale_write", _no_stale_write(histories)),
        CheckResult("within_bound", _within_bound(evidence, options.bound)),
        *(extra or []),
    ]
    return Report(results, summarize(evidence, histories, len(duplicates)))


def _completed(evidence: Evidence) -> list[str]:
    problems = []
    expected = evidence.expected_state
    for job in evidence.jobs.values():
        if job.board_state != "COMPLETED":
            why = f": {job.reason}" if job.reason else ""
            problems.append(f"{job.job} is {job.board_state} on the board, not COMPLETED{why}")
            continue
        state = (job.outcome or {}).get("state")
        if state != expected:
            problems.append(f"{job.job} completed with state {state}, expected {expected}")
        if job.execution_state != expected:
            problems.append(f"{job.job}: its execution is {job.execution_state}, "
                            f"expected {expected}")
        if (job.outcome or {}).get("execution") != job.execution_id:
            problems.append(f"{job.job}: the outcome names execution "
                            f"{(job.outcome or {}).get('execution')}, the database has "
                            f"{job.execution_id}")
    return problems


def _completed_once(histories: list[JobHistory]) -> list[str]:
    problems = []
    for history in histories:
        job = history.evidence
        if job.board_state != "COMPLETED" or not history.owners:
            continue
        last = max(history.owners, key=lambda o: o.epoch)
        if job.completed_epoch != last.epoch or job.completed_by != last.name:
            problems.append(
                f"{job.job} was completed by {job.completed_by} with epoch "
                f"{job.completed_epoch}, but its last owner is {last.name} with epoch "
                f"{last.epoch}")
        after = [o for o in history.owners
                 if job.completed_at is not None and o.taken_at > job.completed_at]
        if after:
            problems.append(f"{job.job} was taken over after it completed: {after}")
    return problems


def _no_rerun_after_success(histories: list[JobHistory], evidence: Evidence) -> list[str]:
    problems = []
    for history in histories:
        job = history.evidence
        grouped = history.by_key()
        for (task, attempt, action), runs in grouped.items():
            for earlier, later in itertools.pairwise(runs):
                assert earlier.owner is not None and later.owner is not None
                if later.owner.epoch <= earlier.owner.epoch:
                    problems.append(
                        f"{job.job}: {action} of {task} attempt {attempt} started twice by "
                        f"{later.owner.name} (epoch {later.owner.epoch}) at "
                        f"{earlier.start.t:.3f} and {later.start.t:.3f}")
            proof = _success_proven_at(history, task, attempt, evidence.successors)
            if action == "execute" and proof is not None:
                problems.extend(
                    f"{job.job}: {task} attempt {attempt} started at {run.start.t:.3f} by "
                    f"pid {run.start.pid}, after its success was saved (by {proof[1]} "
                    f"starting at {proof[0]:.3f})"
                    for run in runs if run.start.t > proof[0])
            if job.finished_at is not None:
                problems.extend(
                    f"{job.job}: {action} of {task} started at {run.start.t:.3f} by pid "
                    f"{run.start.pid}, after the execution's final state was saved "
                    f"({job.finished_at:.3f})"
                    for run in runs if run.start.t > job.finished_at)
    return problems


def _success_proven_at(history: JobHistory, task: str, attempt: int,
                       successors: dict[str, frozenset[str]]) -> tuple[float, str] | None:
    """The first start of a task that runs only after `task` succeeded, following a start of
    this attempt: from then on the attempt's SUCCESS was saved."""
    after = successors.get(task)
    if not after:
        return None
    first = [i.start.t for i in history.starts
             if i.counts and (i.start.task, i.start.attempt) == (task, attempt)]
    if not first:
        return None
    proofs = [i.start for i in history.starts
              if i.start.task in after and i.start.action == "execute" and i.start.t > first[0]
              and i.owner is not None]
    if not proofs:
        return None
    proof = min(proofs, key=lambda s: s.t)
    return proof.t, f"{proof.task} attempt {proof.attempt}"


def _no_overlap(histories: list[JobHistory]) -> list[str]:
    problems = []
    for history in histories:
        for item in history.starts:
            start = item.start
            if item.owner is None:
                problems.append(
                    f"{history.job}: pid {start.pid} started {start.task} at {start.t:.3f} "
                    "without having taken the job over")
            elif item.late and not item.accepted_late:
                assert item.superseded_by is not None
                problems.append(
                    f"{history.job}: {item.owner.name} (epoch {item.owner.epoch}) started "
                    f"{start.task} attempt {start.attempt} at {start.t:.3f}, after "
                    f"{item.superseded_by.name} (epoch {item.superseded_by.epoch}) took the "
                    f"job over at {item.superseded_by.taken_at:.3f}")
    return problems


def _no_stale_write(histories: list[JobHistory]) -> list[str]:
    problems = []
    for history in histories:
        job = history.evidence
        epochs = [o.epoch for o in history.owners]
        if any(b <= a for a, b in itertools.pairwise(epochs)):
            problems.append(f"{job.job}: an owner change did not raise the epoch: "
                            f"{[(o.name, o.epoch) for o in history.owners]}")
        if history.owners:
            last = history.owners[-1]
            if (job.execution_epoch, job.execution_owner) != (last.epoch, last.owner):
                problems.append(
                    f"{job.job}: the execution holds epoch {job.execution_epoch} of "
                    f"{job.execution_owner}, the last take-over was {last.epoch} by "
                    f"{last.owner}")
        problems.extend(_atom_problems(history))
    return problems


def _atom_problems(history: JobHistory) -> list[str]:
    job = history.evidence
    problems = []
    grouped = history.by_key()
    for atom in job.atoms.values():
        if atom.kind != "task" or atom.started_at is None:
            if job.execution_state == "SUCCESS" and atom.kind == "task" \
                    and atom.state not in FINAL_ATOM_STATES:
                problems.append(f"{job.job}: {atom.name} is {atom.state} in a successful "
                                "execution")
            continue
        if job.execution_state == "SUCCESS" and atom.state not in FINAL_ATOM_STATES:
            problems.append(f"{job.job}: {atom.name} is {atom.state} in a successful execution")
        runs = [r for r in grouped.get((atom.name, atom.attempt, "execute"), [])
                if r.start.t >= atom.started_at]
        if not runs:
            problems.append(
                f"{job.job}: {atom.name} attempt {atom.attempt} is saved {atom.state} "
                f"(started_at {atom.started_at:.3f}) but no start of it by an owner follows")
            continue
        producer = runs[-1]
        assert producer.owner is not None
        if atom.started_at < producer.owner.taken_at:
            problems.append(
                f"{job.job}: the saved row of {atom.name} (started_at {atom.started_at:.3f}) "
                f"predates the take-over by {producer.owner.name} at "
                f"{producer.owner.taken_at:.3f} whose run is the last one: a stale write")
        if atom.finished_at is not None and atom.finished_at < atom.started_at:
            problems.append(f"{job.job}: {atom.name} finished before it started")
    return problems


def _within_bound(evidence: Evidence, bound: float) -> list[str]:
    done = [job.completed_at for job in evidence.jobs.values() if job.completed_at is not None]
    if len(done) < len(evidence.jobs):
        return [f"{len(evidence.jobs) - len(done)} of {len(evidence.jobs)} jobs not completed "
                f"within the bound of {bound:g} s"]
    if done and max(done) - evidence.posted_at > bound:
        return [f"the last job completed {max(done) - evidence.posted_at:.1f} s after the "
                f"first post, over the bound of {bound:g} s"]
    return []

