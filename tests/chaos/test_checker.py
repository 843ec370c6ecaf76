"""The chaos checker on crafted histories: it passes a clean one (with a kill and a take-over),
and catches a lost job, a duplicate, an overlap and a stale write, each on its own.

The base story: job-1 runs step-1..3 on conductor a (pid 100, epoch 10); a is SIGKILLed at
t=1003 during step-2; b (pid 200, epoch 20) takes the job over at 1006, runs step-2 again (it
was in flight: at-least-once), runs step-3 and completes the job.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from conductor.chaos import (
    ChaosEvent,
    CheckOptions,
    Evidence,
    JobEvidence,
    Owner,
    Report,
    SavedAtom,
    Start,
    check,
)
from conductor.chaos.evidence import KILL, PAUSE, RESUME

A, B, C = 100, 200, 300
SUCCESSORS = {"step-1": frozenset({"step-2", "step-3"}), "step-2": frozenset({"step-3"}),
              "step-3": frozenset()}


def owner(epoch: int, name: str, pid: int, taken_at: float) -> Owner:
    return Owner(epoch, f"{name}@host:{pid}", taken_at)


def atom(name: str, started: float, finished: float, attempt: int = 1,
         state: str = "SUCCESS") -> SavedAtom:
    return SavedAtom(name, "task", state, attempt, started, finished)


def start(task: str, pid: int, t: float, attempt: int = 1, job: str = "job-1") -> Start:
    return Start(job, task, attempt, pid, t)


def base_job(**changes: Any) -> JobEvidence:
    job = JobEvidence(
        "job-1", "COMPLETED",
        outcome={"state": "SUCCESS", "execution": "ex-1"}, completed_at=1008.1,
        completed_epoch=20, completed_by="b",
        execution_id="ex-1", execution_state="SUCCESS", execution_epoch=20,
        execution_owner="b@host:200", finished_at=1008.0,
        atoms={"step-1": atom("step-1", 1000.05, 1001.0),
               "step-2": atom("step-2", 1006.05, 1006.9),
               "step-3": atom("step-3", 1006.95, 1008.0)},
        owners=[owner(10, "a", A, 1000.0), owner(20, "b", B, 1006.0)])
    return dataclasses.replace(job, **changes)


def base_starts() -> list[Start]:
    return [start("step-1", A, 1000.1), start("step-2", A, 1002.0),
            start("step-2", B, 1006.1), start("step-3", B, 1007.0)]


def evidence(job: JobEvidence | None = None, starts: list[Start] | None = None,
             events: list[ChaosEvent] | None = None, **more_jobs: JobEvidence) -> Evidence:
    jobs = {"job-1": job or base_job(), **more_jobs}
    return Evidence(
        jobs=jobs, starts=base_starts() if starts is None else starts,
        events=[ChaosEvent(1003.0, KILL, "a", A)] if events is None else events,
        posted_at=999.0, successors=SUCCESSORS)


def run(ev: Evidence, bound: float = 60.0) -> Report:
    return check(ev, CheckOptions(bound=bound))


def failing(report: Report) -> dict[str, list[str]]:
    return {c.name: c.problems for c in report.checks if not c.ok}


def test_a_clean_history_with_a_kill_and_a_takeover_passes() -> None:
    report = run(evidence())
    assert failing(report) == {}
    summary = report.summary
    assert (summary.jobs, summary.completed, summary.kills, summary.takeovers) == (1, 1, 1, 1)
    assert summary.reruns_in_flight == 1  # step-2, in flight when a died
    assert summary.duplicates == 0 and summary.frozen_resumed == 0
    assert summary.max_time_to_resume == pytest.approx(3.1)  # kill at 1003, b starts 1006.1
    assert summary.duration == pytest.approx(9.1)
    assert "duplicates: 0" in report.render() and "all checks passed" in report.render()


@pytest.mark.parametrize(("state", "reason", "expected"), [
    ("UNCLAIMED", None, "job-1 is UNCLAIMED on the board, not COMPLETED"),
    ("TRASHED", "3 owners died", "job-1 is TRASHED on the board, not COMPLETED: 3 owners died"),
    ("MISSING", None, "job-1 is MISSING on the board"),
])
def test_a_lost_or_dead_lettered_job_fails_completed(state: str, reason: str | None,
                                                     expected: str) -> None:
    job = base_job(board_state=state, reason=reason, outcome=None, completed_at=None,
                   completed_epoch=None, completed_by=None)
    report = run(evidence(job))
    problems = failing(report)
    assert set(problems) == {"completed", "within_bound"}
    assert problems["completed"][0].startswith(expected)
    assert "1 of 1 jobs not completed" in problems["within_bound"][0]
    assert "FAIL completed" in report.render()


def test_a_job_completed_with_another_state_fails_completed() -> None:
    job = base_job(outcome={"state": "REVERTED", "execution": "ex-1"},
                   execution_state="REVERTED")
    assert set(failing(run(evidence(job)))) == {"completed"}


def test_a_task_run_again_after_a_dependent_started_is_a_duplicate() -> None:
    # b re-runs step-1, although step-2 had started (so step-1's SUCCESS was saved).
    starts = [*base_starts(), start("step-1", B, 1006.2)]
    job = base_job(atoms={**base_job().atoms, "step-1": atom("step-1", 1006.15, 1006.3)})
    report = run(evidence(job, starts))
    problems = failing(report)
    assert set(problems) == {"no_rerun_after_success"}
    assert "step-1 attempt 1 started at 1006.200 by pid 200, after its success was saved" \
        in problems["no_rerun_after_success"][0]
    assert report.summary.duplicates == 1


def test_a_task_started_twice_by_one_owner_is_a_duplicate() -> None:
    starts = [*base_starts(), start("step-3", B, 1007.5)]
    problems = failing(run(evidence(starts=starts)))
    assert set(problems) == {"no_rerun_after_success"}
    assert "step-3 attempt 1 started twice by b (epoch 20)" in problems[
        "no_rerun_after_success"][0]


def test_a_task_started_after_the_final_state_was_saved_is_a_duplicate() -> None:
    job = base_job(finished_at=1007.9, atoms={**base_job().atoms,
                                              "step-3": atom("step-3", 1006.95, 1007.8)})
    starts = [*base_starts(), start("step-3", C, 1009.0)]
    job.owners.append(owner(30, "c", C, 1008.5))
    job = dataclasses.replace(job, execution_epoch=30, execution_owner="c@host:300",
                              completed_epoch=30, completed_by="c")
    problems = failing(run(evidence(job, starts)))
    assert "no_rerun_after_success" in problems
    assert any("after the execution's final state was saved" in p
               for p in problems["no_rerun_after_success"])


def test_a_stale_owner_starting_a_task_after_the_takeover_is_an_overlap() -> None:
    # a was not killed: its session expired (no event), b took over at 1006, and a still
    # started step-3 at 1006.5.
    starts = [*base_starts(), start("step-3", A, 1006.5)]
    report = run(evidence(starts=starts, events=[]))
    problems = failing(report)
    assert set(problems) == {"no_overlap"}
    assert problems["no_overlap"] == [
        "job-1: a (epoch 10) started step-3 attempt 1 at 1006.500, after b (epoch 20) took "
        "the job over at 1006.000"]


def frozen_story(paused: bool, rerun_by_b: bool) -> Evidence:
    """a is SIGSTOPped at 1002.5 right after saving step-2 RUNNING, before recording its
    start; b takes over at 1006; a is SIGCONTed at 1009 and records the start."""
    starts = [start("step-1", A, 1000.1), start("step-3", B, 1007.0), start("step-2", A, 1009.01)]
    if rerun_by_b:
        starts.append(start("step-2", B, 1006.1))
    events = [ChaosEvent(1002.5, PAUSE, "a", A), ChaosEvent(1009.0, RESUME, "a", A)]
    job = base_job()
    if not rerun_by_b:
        job = base_job(atoms={**job.atoms, "step-2": atom("step-2", 1002.4, 1006.9)})
    return evidence(job, sorted(starts, key=lambda s: s.t), events if paused else [])


def test_a_frozen_attempt_resumed_after_the_takeover_and_rerun_by_the_new_owner_is_accepted(
        ) -> None:
    report = run(frozen_story(paused=True, rerun_by_b=True))
    assert failing(report) == {}
    assert report.summary.frozen_resumed == 1
    assert report.summary.max_time_to_resume == pytest.approx(1006.1 - 1002.5)


@pytest.mark.parametrize(("paused", "rerun_by_b"), [(False, True), (True, False)])
def test_a_late_start_is_an_overlap_unless_frozen_and_rerun(paused: bool,
                                                            rerun_by_b: bool) -> None:
    problems = failing(run(frozen_story(paused, rerun_by_b)))
    assert "no_overlap" in problems
    assert "a (epoch 10) started step-2 attempt 1 at 1009.010" in problems["no_overlap"][0]


def test_a_stopped_owner_that_goes_on_working_after_sigcont_is_an_overlap() -> None:
    # TaskFlow's failure: a is SIGSTOPped during step-2 (1002.5 to 1009); b takes over at
    # 1006, re-runs step-2 and runs step-3; a resumes and starts step-3 too. b started
    # step-3 as well (same attempt), but b also re-ran step-2, which step-3 depends on: so
    # step-3 was not RUNNING at the take-over and a's start of it is stale work.
    starts = [*base_starts(), start("step-3", A, 1009.2)]
    events = [ChaosEvent(1002.5, PAUSE, "a", A), ChaosEvent(1009.0, RESUME, "a", A)]
    report = run(evidence(starts=starts, events=events))
    problems = failing(report)
    assert set(problems) == {"no_overlap"}
    assert "a (epoch 10) started step-3 attempt 1 at 1009.200, after b (epoch 20)" in \
        problems["no_overlap"][0]
    assert report.summary.frozen_resumed == 0


def test_a_start_by_a_process_that_never_owned_the_job_is_an_overlap() -> None:
    starts = [*base_starts(), start("step-3", C, 1007.2)]
    problems = failing(run(evidence(starts=starts)))
    assert problems["no_overlap"] == [
        "job-1: pid 300 started step-3 at 1007.200 without having taken the job over"]


def test_a_start_of_a_job_that_was_not_posted_is_reported() -> None:
    starts = [*base_starts(), start("step-1", A, 1001.0, job="job-x")]
    assert "no_overlap" in failing(run(evidence(starts=starts)))


def test_a_saved_row_from_before_the_last_takeover_is_a_stale_write() -> None:
    # step-2's saved row carries a's start time although b ran it last: a's write won.
    job = base_job(atoms={**base_job().atoms, "step-2": atom("step-2", 1001.95, 1002.2)})
    problems = failing(run(evidence(job)))
    assert set(problems) == {"no_stale_write"}
    assert "the saved row of step-2 (started_at 1001.950) predates the take-over by b" in \
        problems["no_stale_write"][0]


def test_an_execution_left_with_an_old_epoch_is_a_stale_write() -> None:
    job = base_job(execution_epoch=10, execution_owner="a@host:100", completed_epoch=10,
                   completed_by="a")
    problems = failing(run(evidence(job)))
    assert set(problems) == {"no_stale_write", "completed_once"}
    assert "the execution holds epoch 10 of a@host:100, the last take-over was 20" in \
        problems["no_stale_write"][0]
    assert "completed by a with epoch 10, but its last owner is b with epoch 20" in \
        problems["completed_once"][0]


def test_an_owner_change_that_did_not_raise_the_epoch_is_a_stale_write() -> None:
    job = base_job(owners=[owner(20, "a", A, 1000.0), owner(10, "b", B, 1006.0)],
                   execution_epoch=10, completed_epoch=20)
    problems = failing(run(evidence(job)))
    assert any("did not raise the epoch" in p for p in problems["no_stale_write"])


def test_a_task_left_running_in_a_successful_execution_is_reported() -> None:
    job = base_job(atoms={**base_job().atoms, "step-3": atom("step-3", 1006.95, 0.0,
                                                              state="RUNNING")})
    job.atoms["step-3"] = dataclasses.replace(job.atoms["step-3"], finished_at=None)
    problems = failing(run(evidence(job)))
    assert problems["no_stale_write"] == [
        "job-1: step-3 is RUNNING in a successful execution"]


def test_a_takeover_after_the_completion_is_reported() -> None:
    job = base_job()
    job.owners.append(owner(30, "c", C, 1010.0))
    job = dataclasses.replace(job, execution_epoch=30, execution_owner="c@host:300")
    problems = failing(run(evidence(job)))
    assert "completed_once" in problems
    assert any("taken over after it completed" in p for p in problems["completed_once"])


def test_completion_past_the_bound_fails_within_bound() -> None:
    problems = failing(run(evidence(), bound=5.0))
    assert problems == {"within_bound": [
        "the last job completed 9.1 s after the first post, over the bound of 5 s"]}


def test_the_report_as_json_lists_every_check() -> None:
    report = run(evidence(starts=[*base_starts(), start("step-3", B, 1007.5)]))
    data = report.to_json()
    assert data["ok"] is False
    assert data["checks"]["no_rerun_after_success"]["ok"] is False
    assert data["checks"]["completed"] == {"ok": True, "problems": []}
    assert data["summary"]["duplicates"] == 1
