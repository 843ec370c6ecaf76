"""The conductor daemon end to end: real `conductor run` processes, a real ZooKeeper, SQLite.

Each test reads the truth from the demo flow's ledger (one line per task start, appended by the
task itself) and from the board and the database.
"""

from __future__ import annotations

import time
from collections import Counter

import pytest

from conductor.testing import wait_until
from jobboard.model import JobState
from persistence import AtomState, ExecutionState, open_store
from tests.conductor.conftest import SESSION_TIMEOUT, Cluster, pids_of

DEADLINE = 60.0


def _completed(cluster: Cluster, job: str) -> bool:
    return cluster.board.get(job).state is JobState.COMPLETED


def test_two_conductors_drain_the_board_running_every_task_once(cluster: Cluster) -> None:
    cluster.conductor("a")
    cluster.conductor("b")
    jobs = [cluster.post_steps(3, 0.0, name=f"j{i}") for i in range(12)]
    for job in jobs:
        outcome = cluster.board.wait(job, DEADLINE)
        assert outcome.outcome is not None and outcome.outcome["state"] == "SUCCESS", outcome
    counts = Counter((e["job"], e["task"]) for e in cluster.entries())
    assert set(counts) == {(job, f"step-{i}") for job in jobs for i in (1, 2, 3)}
    assert set(counts.values()) == {1}
    assert len({e["pid"] for e in cluster.entries()}) == 2, "both conductors took jobs"
    with open_store(cluster.db) as store:
        for job in jobs:
            execution = store.find_by_job(job)
            assert execution is not None and execution.state is ExecutionState.SUCCESS


@pytest.mark.slow
def test_after_sigkill_of_the_owner_another_resumes_without_rerunning_finished_tasks(
        cluster: Cluster) -> None:
    first = cluster.conductor("first", max_jobs=1)
    job = cluster.post_steps(8, 0.4)
    wait_until(lambda: cluster.entries(job), DEADLINE, "the first conductor to start the job")
    cluster.conductor("second", max_jobs=1)
    first.kill()
    killed = time.monotonic()
    in_flight = max(cluster.entries(job), key=lambda e: e["t"])["task"]
    wait_until(lambda: len(pids_of(cluster.entries(job))) == 2, DEADLINE,
               "another conductor to start a task of the job")
    resumed_after = time.monotonic() - killed
    outcome = cluster.board.wait(job, DEADLINE)
    assert outcome.outcome is not None and outcome.outcome["state"] == "SUCCESS"
    entries = sorted(cluster.entries(job), key=lambda e: e["t"])
    runs = Counter(e["task"] for e in entries)
    # The task in flight when its owner died runs again (same attempt: at-least-once); the
    # steps whose success was saved never run again.
    # (If the kill fell between a step's saved start and its first line, nothing ran twice.)
    assert set(runs) == {f"step-{i}" for i in range(1, 9)}, entries
    assert all(count == 1 for task, count in runs.items() if task != in_flight), entries
    again = [e for e in entries if e["task"] == in_flight]
    assert [e["attempt"] for e in again] in ([1, 1], [1])
    assert pids_of(entries) == [first.pid, cluster.processes[1].pid]
    # Within the session timeout (+ the server's tick) plus a small constant.
    assert resumed_after < SESSION_TIMEOUT + 1.5, resumed_after


def test_sigterm_finishes_the_task_in_flight_then_hands_the_job_over_at_once(
        cluster: Cluster) -> None:
    first = cluster.conductor("first", max_jobs=1)
    job = cluster.post_steps(12, 0.4)
    wait_until(lambda: cluster.entries(job), DEADLINE, "the first conductor to start the job")
    cluster.conductor("second", max_jobs=1)
    assert first.terminate() == 0
    released = time.monotonic()
    wait_until(lambda: len(pids_of(cluster.entries(job))) == 2, DEADLINE,
               "the second conductor to start a task")
    handed_over = time.monotonic() - released
    assert cluster.board.wait(job, DEADLINE).outcome["state"] == "SUCCESS"  # type: ignore[index]
    runs = Counter(e["task"] for e in cluster.entries(job))
    assert runs == {f"step-{i}": 1 for i in range(1, 13)}, "nothing ran twice"
    assert handed_over < SESSION_TIMEOUT, "released, not left to expire"


@pytest.mark.slow
def test_a_stopped_owner_resumed_after_a_takeover_never_starts_a_task_again(
        cluster: Cluster) -> None:
    first = cluster.conductor("first", max_jobs=1)
    job = cluster.post_steps(6, 0.3)
    wait_until(lambda: any(e["task"] == "step-2" for e in cluster.entries(job)), DEADLINE,
               "step-2 to start")
    first.pause()  # a GC pause, a frozen VM: the session expires, the process lives on
    second = cluster.conductor("second", max_jobs=1)
    wait_until(lambda: any(e["pid"] == second.pid for e in cluster.entries(job)), DEADLINE,
               "the second conductor to take over")
    first.resume()
    assert cluster.board.wait(job, DEADLINE).outcome["state"] == "SUCCESS"  # type: ignore[index]
    entries = cluster.entries(job)
    taken_over_at = min(e["t"] for e in entries if e["pid"] == second.pid)
    late = [e for e in entries if e["pid"] == first.pid and e["t"] >= taken_over_at]
    assert not late, f"the stale owner started tasks after the takeover: {late}"
    assert pids_of(entries) == [first.pid, second.pid]
    wait_until(lambda: "fenced" in first.log_tail(200) or "lost" in first.log_tail(200),
               30, "the stale owner to notice it lost the job")
    # It rejoins with a new session (presence renewed) and runs jobs again.
    assert second.terminate() == 0
    rejoined = cluster.post_steps(1, 0.0, name="after")
    assert cluster.board.wait(rejoined, DEADLINE).outcome["state"] == "SUCCESS"  # type: ignore[index]
    assert [e["pid"] for e in cluster.entries(rejoined)] == [first.pid]


def test_max_jobs_is_exactly_the_number_of_jobs_held_at_once(cluster: Cluster) -> None:
    cluster.conductor("only", max_jobs=2)
    jobs = [cluster.post_steps(1, 0.4, name=f"j{i}") for i in range(6)]
    held_most = 0
    while not all(_completed(cluster, job) for job in jobs):
        held = sum(1 for job in cluster.board.jobs() if job.state is JobState.CLAIMED)
        held_most = max(held_most, held)
        time.sleep(0.02)
    starts = sorted(e["t"] for e in cluster.entries())
    # With 0.4 s tasks and 2 slots, no 3 starts fall within 0.35 s of each other.
    assert all(starts[i + 2] - starts[i] > 0.35 for i in range(len(starts) - 2)), starts
    assert held_most == 2


def test_a_job_for_a_flow_this_conductor_lacks_goes_to_one_that_has_it(
        cluster: Cluster, tmp_path: object) -> None:
    flows = cluster.dir / "other_flows.py"
    flows.write_text(
        "from conductor.flow import linear, task\n"
        "from conductor.registry import registered_flow\n"
        "@registered_flow('other.flow')\n"
        "def build(inputs):\n"
        "    return linear(task(lambda: 42, name='answer', provides='answer'))\n")
    cluster.conductor("demo-only", extra_args=("--release-backoff", "30"))
    job = cluster.board.post("other", "other.flow", {}).id
    wait_until(lambda: (cluster.board.get(job).document or {}).get("declines") == 1, DEADLINE,
               "the demo-only conductor to decline the job")
    assert cluster.board.get(job).state is JobState.UNCLAIMED
    cluster.conductor("other", flows=("conductor.demo", str(flows)))
    outcome = cluster.board.wait(job, DEADLINE)
    assert outcome.outcome is not None and outcome.outcome["state"] == "SUCCESS"


def test_a_flow_nobody_has_is_dead_lettered_after_max_declines(cluster: Cluster) -> None:
    cluster.conductor("a", extra_args=("--max-declines", "2", "--release-backoff", "0.05"))
    job = cluster.board.post("mystery", "no.such.flow", {}).id
    outcome = cluster.board.wait(job, DEADLINE)
    assert outcome.state is JobState.TRASHED
    assert outcome.reason is not None and "declined 2 times" in outcome.reason
    assert "no.such.flow" in outcome.reason


def test_invalid_inputs_are_dead_lettered_with_the_reason(cluster: Cluster) -> None:
    cluster.conductor("a")
    job = cluster.board.post("bad", "demo.steps", {"steps": "many", "seconds": 0,
                                                     "ledger": str(cluster.ledger)}).id
    outcome = cluster.board.wait(job, DEADLINE)
    assert outcome.state is JobState.TRASHED
    assert outcome.reason is not None and "steps must be an integer" in outcome.reason


@pytest.mark.slow
def test_a_job_that_kills_every_owner_is_dead_lettered_after_max_crashes(
        cluster: Cluster) -> None:
    poison = cluster.dir / "poison.py"
    poison.write_text(
        "import os, signal\n"
        "from conductor.flow import linear, task\n"
        "from conductor.registry import registered_flow\n"
        "@registered_flow('poison')\n"
        "def build(inputs):\n"
        "    return linear(task(lambda: os.kill(os.getpid(), signal.SIGKILL), name='die'))\n")
    flows = ("conductor.demo", str(poison))
    job = cluster.board.post("poison", "poison", {}).id
    victims = []
    for i in range(2):
        victim = cluster.conductor(f"victim{i}", flows=flows,
                                   extra_args=("--max-crashes", "2"))
        victims.append(victim)
        victim.wait(DEADLINE)  # it claims the job and dies of it
    survivor = cluster.conductor("survivor", flows=flows, extra_args=("--max-crashes", "2"))
    outcome = cluster.board.wait(job, DEADLINE)
    assert outcome.state is JobState.TRASHED, outcome
    assert outcome.reason is not None and "2 owners in a row died" in outcome.reason
    assert survivor.alive
    with open_store(cluster.db) as store:
        execution = store.find_by_job(job)
        assert execution is not None
        assert execution.atoms["die"].state is AtomState.RUNNING


@pytest.mark.slow
def test_a_job_whose_flow_kills_its_builder_is_dead_lettered_after_max_crashes(
        cluster: Cluster) -> None:
    """Inputs that kill the process while the flow is built (say, a graph sized by the inputs
    that exhausts memory): no execution is ever opened, yet the poison pill is still caught."""
    poison = cluster.dir / "poison_build.py"
    poison.write_text(
        "import os, signal\n"
        "from conductor.flow import linear, task\n"
        "from conductor.registry import registered_flow\n"
        "@registered_flow('huge')\n"
        "def build(inputs):\n"
        "    if inputs['size'] > 1000:\n"
        "        os.kill(os.getpid(), signal.SIGKILL)  # what the OOM killer would do\n"
        "    return linear(task(lambda: None, name='t'))\n")
    flows = ("conductor.demo", str(poison))
    job = cluster.board.post("huge", "huge", {"size": 10**9}).id
    for i in range(2):
        victim = cluster.conductor(f"victim{i}", flows=flows,
                                   extra_args=("--max-crashes", "2"))
        victim.wait(DEADLINE)  # it claims the job and dies building its flow
    survivor = cluster.conductor("survivor", flows=flows, extra_args=("--max-crashes", "2"))
    outcome = cluster.board.wait(job, DEADLINE)
    assert outcome.state is JobState.TRASHED, outcome
    assert outcome.reason is not None and "while building its flow" in outcome.reason
    assert survivor.alive
    with open_store(cluster.db) as store:
        assert store.find_by_job(job) is None
    small = cluster.board.post("small", "huge", {"size": 1}).id
    done = cluster.board.wait(small, DEADLINE)
    assert done.outcome is not None and done.outcome["state"] == "SUCCESS"


def test_cancel_stops_a_running_job_at_the_next_task_boundary_and_reverts_it(
        cluster: Cluster) -> None:
    cluster.conductor("a")
    job = cluster.post_steps(5, 0.3)
    wait_until(lambda: any(e["task"] == "step-2" for e in cluster.entries(job)), DEADLINE,
               "step-2 to start")
    cluster.board.update(job, {"cancel": {"at": time.time(), "by": "test"}})
    outcome = cluster.board.wait(job, DEADLINE)
    assert outcome.outcome is not None and outcome.outcome["state"] == "REVERTED"
    assert "Cancelled" in outcome.outcome["failure"]["type"]
    started = {e["task"] for e in cluster.entries(job)}
    assert started <= {"step-1", "step-2", "step-3"} and "step-5" not in started
    with open_store(cluster.db) as store:
        execution = store.find_by_job(job)
        assert execution is not None and execution.state is ExecutionState.REVERTED
        assert execution.atoms["step-1"].state is AtomState.REVERTED


def test_an_import_error_while_building_a_flow_gives_the_job_back_never_the_trash(
        cluster: Cluster) -> None:
    """A rolling deploy: the flow's code is not all there yet. The job is released with backoff,
    more often than --max-declines allows declines, and runs once the code is deployed."""
    deployed = cluster.dir / "deployed"
    flows = cluster.dir / "half_deployed.py"
    flows.write_text(
        "import os\n"
        "from conductor.flow import linear, task\n"
        "from conductor.registry import registered_flow\n"
        "@registered_flow('half.deployed')\n"
        "def build(inputs):\n"
        f"    if not os.path.exists({str(deployed)!r}):\n"
        "        import not_deployed_yet  # this node lacks the new code for now\n"
        "    return linear(task(lambda: 42, name='answer', provides='answer'))\n")
    conductor = cluster.conductor("a", flows=("conductor.demo", str(flows)), extra_args=(
        "--max-declines", "2", "--max-crashes", "2", "--release-backoff", "0.05"))
    job = cluster.board.post("half", "half.deployed", {}).id

    def released_times() -> int:
        found = cluster.board.get(job)
        assert found.state in (JobState.UNCLAIMED, JobState.CLAIMED), found
        return int((found.document or {}).get("attempts", 0)) - (
            1 if found.state is JobState.CLAIMED else 0)

    wait_until(lambda: released_times() > 4, DEADLINE,
               "the job to be released more times than max_declines and max_crashes allow")
    document = cluster.board.get(job).document or {}
    assert "declines" not in document, "an import error is not a decline"
    assert conductor.log_tail(200).count("failed to import") >= 4
    deployed.touch()
    outcome = cluster.board.wait(job, DEADLINE)
    assert outcome.state is JobState.COMPLETED, outcome
    assert outcome.outcome is not None and outcome.outcome["state"] == "SUCCESS", outcome
    assert not cluster.board.trashed()
