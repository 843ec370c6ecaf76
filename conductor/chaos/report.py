"""The outcome of a chaos run: each check's problems and a summary of what happened."""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from typing import Any

from conductor.chaos.evidence import (
    KILL,
    LEADER_KILL,
    PAUSE,
    RESUME,
    START,
    ChaosEvent,
    Evidence,
    Owner,
)
from conductor.chaos.history import JobHistory

MAX_SHOWN = 20  # problems printed per failing check (the count is always given)


@dataclass
class CheckResult:
    """One check: passed when it found no problem."""

    name: str
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class Summary:
    """What the run did and what it cost (times in seconds)."""

    jobs: int = 0
    completed: int = 0
    task_starts: int = 0
    kills: int = 0
    pauses: int = 0
    leader_kills: int = 0
    conductors_started: int = 0
    takeovers: int = 0
    reruns_in_flight: int = 0
    """Task attempts started again by a new owner because they were in flight when the
    previous owner lost the job (at-least-once; allowed)."""
    frozen_resumed: int = 0
    """Starts by a SIGSTOPped owner's resumed code after a take-over (accepted, fenced off)."""
    duplicates: int = 0
    """Starts that broke `no_rerun_after_success` (must be 0)."""
    resumes: int = 0
    """Jobs held by a killed conductor, or by a paused one that lost them, later resumed."""
    max_time_to_resume: float | None = None
    median_time_to_resume: float | None = None
    duration: float | None = None  # first post to last completion


@dataclass
class Report:
    checks: list[CheckResult]
    summary: Summary

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    @property
    def failing(self) -> list[CheckResult]:
        return [check for check in self.checks if not check.ok]

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "summary": asdict(self.summary),
            "checks": {check.name: {"ok": check.ok, "problems": check.problems}
                       for check in self.checks},
        }

    def render(self) -> str:
        """A human summary: the figures, then each check, problems of failing ones listed."""
        s = self.summary
        lines = [
            f"jobs: {s.jobs} posted, {s.completed} completed; task starts: {s.task_starts}",
            f"chaos: {s.kills} conductor kills, {s.pauses} pauses, {s.leader_kills} ZooKeeper "
            f"leader kills, {s.conductors_started} conductors started",
            f"takeovers: {s.takeovers}; in-flight attempts re-run by the new owner: "
            f"{s.reruns_in_flight}; frozen attempts resumed (fenced off): {s.frozen_resumed}",
            f"time to resume: max {_seconds(s.max_time_to_resume)}, median "
            f"{_seconds(s.median_time_to_resume)} over {s.resumes} jobs",
            f"duplicates: {s.duplicates}",
            f"duration: {_seconds(s.duration)}",
        ]
        for check in self.checks:
            lines.append(f"{'PASS' if check.ok else 'FAIL'} {check.name}"
                         + ("" if check.ok else f" ({len(check.problems)} problems)"))
            lines.extend(f"    {problem}" for problem in check.problems[:MAX_SHOWN])
            if len(check.problems) > MAX_SHOWN:
                lines.append(f"    ... and {len(check.problems) - MAX_SHOWN} more")
        lines.append("all checks passed" if self.ok else
                     "FAILED: " + ", ".join(check.name for check in self.failing))
        return "\n".join(lines)


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


def summarize(evidence: Evidence, histories: list[JobHistory], duplicates: int) -> Summary:
    summary = Summary(jobs=len(evidence.jobs), duplicates=duplicates,
                      task_starts=len(evidence.starts))
    summary.completed = sum(1 for job in evidence.jobs.values()
                            if job.board_state == "COMPLETED")
    summary.kills = sum(1 for e in evidence.events if e.kind == KILL)
    summary.pauses = sum(1 for e in evidence.events if e.kind == PAUSE)
    summary.leader_kills = sum(1 for e in evidence.events if e.kind == LEADER_KILL)
    summary.conductors_started = sum(1 for e in evidence.events if e.kind == START)
    summary.takeovers = sum(max(0, len(h.owners) - 1) for h in histories)
    for history in histories:
        summary.frozen_resumed += sum(1 for item in history.starts if item.accepted_late)
        summary.reruns_in_flight += sum(len(runs) - 1 for runs in history.by_key().values())
    summary.reruns_in_flight = max(0, summary.reruns_in_flight - duplicates)
    resumes = _times_to_resume(evidence, histories)
    summary.resumes = len(resumes)
    if resumes:
        summary.max_time_to_resume = max(resumes)
        summary.median_time_to_resume = statistics.median(resumes)
    done = [job.completed_at for job in evidence.jobs.values() if job.completed_at is not None]
    if done:
        summary.duration = max(done) - evidence.posted_at
    return summary


def _taken_over_during_pause(history: JobHistory, owner: Owner, pause: ChaosEvent,
                             events: list[ChaosEvent]) -> bool:
    resumed = next((e.t for e in events
                    if e.kind == RESUME and e.pid == pause.pid and e.t >= pause.t), float("inf"))
    return any(o.epoch > owner.epoch and pause.t <= o.taken_at <= resumed
               for o in history.owners)


def _times_to_resume(evidence: Evidence, histories: list[JobHistory]) -> list[float]:
    """For each job a killed (or paused) conductor held, the time from the kill (the pause)
    until another conductor started a task of it or completed it. A pause after which the
    paused conductor itself went on (no take-over) is not counted."""
    times = []
    events = sorted(evidence.events, key=lambda e: e.t)
    stops = [e for e in events if e.kind in (KILL, PAUSE) and e.pid is not None]
    for history in histories:
        job = history.evidence
        for event in stops:
            owner = history.owner_at(event.t)
            if owner is None or owner.pid != event.pid:
                continue
            if job.completed_at is not None and job.completed_at <= event.t:
                continue
            if event.kind == PAUSE and not _taken_over_during_pause(history, owner, event,
                                                                    events):
                continue
            progress = [item.start.t for item in history.starts
                        if item.counts and item.start.pid != event.pid and item.start.t > event.t]
            if job.completed_at is not None and job.completed_by != owner.name:
                progress.append(job.completed_at)
            if progress:
                times.append(min(progress) - event.t)
    return times
