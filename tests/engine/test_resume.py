"""Resume from saved state, stop/suspend, pause, fencing, parking, process workers."""

from __future__ import annotations

import importlib.util
import os
import sys
import threading
from collections.abc import Sequence
from typing import Any

import pytest

from conductor.engine import (
    FakeClock,
    ProcessDispatcher,
    RunControl,
    RunState,
    TaskNotSendable,
    compile_flow,
    run_flow,
)
from conductor.engine.core import Core
from conductor.flow import Delegated, Retry, TaskContext, linear, task, unordered
from conductor.registry import Registry
from persistence import AtomRecord, AtomState, ExecutionChange, MemoryStore
from tests.engine import proc_tasks

WAIT = 10.0


class Log:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.events: list[str] = []

    def add(self, event: str) -> None:
        with self.lock:
            self.events.append(event)


def _in_thread(**kwargs: Any) -> tuple[threading.Thread, dict[str, Any]]:
    box: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: box.setdefault("outcome", run_flow(**kwargs)))
    thread.start()
    return thread, box


def test_stop_suspends_and_resume_reruns_the_task_in_flight_with_the_same_key() -> None:
    log = Log()
    control = RunControl()
    started = threading.Event()
    release = threading.Event()

    def b(context: TaskContext) -> None:
        log.add(f"b {context.idempotency_key}")
        if context.attempt == 1 and not started.is_set():
            started.set()
            release.wait(WAIT)

    flow = linear(task(lambda: log.add("a"), name="a"), task(b, name="b"),
                  task(lambda: log.add("c"), name="c"))
    store = MemoryStore()
    thread, box = _in_thread(flow=flow, store=store, job_id="j", control=control)
    assert started.wait(WAIT)
    control.stop(grace=0)
    thread.join(WAIT)
    release.set()
    first = box["outcome"]
    assert first.state is RunState.SUSPENDED
    saved = store.load(first.execution_id)
    assert saved.state.value == "SUSPENDED"
    assert saved.atoms["a"].state is AtomState.SUCCESS
    assert saved.atoms["b"].state is AtomState.RUNNING and saved.atoms["b"].attempt == 1
    second = run_flow(flow, store=store, job_id="j", epoch=2)
    assert second.state is RunState.SUCCESS
    key = f"{first.execution_id}:b:1"
    assert log.events == ["a", f"b {key}", f"b {key}", "c"]


def test_stop_waits_for_tasks_in_flight_within_the_grace_period() -> None:
    log = Log()
    control = RunControl()

    def b() -> None:
        control.stop(grace=WAIT)  # asked to stop while b runs: b still completes and is saved
        log.add("b")

    flow = linear(task(b, name="b"), task(lambda: log.add("c"), name="c"))
    store = MemoryStore()
    first = run_flow(flow, store=store, job_id="j", control=control)
    assert first.state is RunState.SUSPENDED
    assert store.load(first.execution_id).atoms["b"].state is AtomState.SUCCESS
    assert run_flow(flow, store=store, job_id="j", epoch=2).state is RunState.SUCCESS
    assert log.events == ["b", "c"]


def test_resume_mid_retry_keeps_the_backoff_and_the_retry_count() -> None:
    control = RunControl()
    attempts: list[int] = []

    def flaky(context: TaskContext) -> None:
        attempts.append(context.attempt)
        if context.attempt == 1:
            control.stop()
        raise ConnectionError("still down")

    flow = linear(task(flaky, retry=Retry(times=1, delay=100)))
    store = MemoryStore()
    first = run_flow(flow, store=store, job_id="j", control=control, clock=FakeClock(0))
    assert first.state is RunState.SUSPENDED
    pending = store.load(first.execution_id).atoms["flaky"]
    assert (pending.state, pending.attempt, pending.not_before) == (AtomState.PENDING, 2, 100)
    clock = FakeClock(0)
    second = run_flow(flow, store=store, job_id="j", epoch=2, clock=clock)
    assert clock.jumps == [100]  # the saved backoff is honoured, not restarted
    assert attempts == [1, 2]  # one retry in all: the count continued
    assert second.state is RunState.REVERTED


def test_resume_mid_revert_continues_reverting() -> None:
    log = Log()
    control = RunControl()

    def undo_b() -> None:
        log.add("undo b")
        control.stop()

    def fail() -> None:
        raise ValueError("original")

    flow = linear(task(lambda: log.add("a"), name="a", revert=lambda: log.add("undo a")),
                  task(lambda: log.add("b"), name="b", revert=undo_b),
                  task(fail, name="fail"))
    store = MemoryStore()
    first = run_flow(flow, store=store, job_id="j", control=control)
    assert first.state is RunState.SUSPENDED
    saved = store.load(first.execution_id)
    assert saved.failure is not None and saved.failure.message == "original"
    assert saved.atoms["b"].state is AtomState.REVERTED
    assert saved.atoms["a"].state is AtomState.SUCCESS
    second = run_flow(flow, store=store, job_id="j", epoch=2)
    assert second.state is RunState.REVERTED
    assert second.failure is not None and second.failure.message == "original"
    assert log.events == ["a", "b", "undo b", "undo a"]


def test_a_fenced_runner_stops_and_starts_no_new_task() -> None:
    log = Log()
    store = MemoryStore()

    def b(context: TaskContext) -> None:
        log.add("b")
        store.take_over(context.execution_id, 7, "someone-else")

    flow = linear(task(b, name="b"), task(lambda: log.add("c"), name="c"))
    outcome = run_flow(flow, store=store, job_id="j")
    assert outcome.state is RunState.ABANDONED and outcome.reason == "fenced"
    assert log.events == ["b"]
    saved = store.load(outcome.execution_id)
    assert saved.atoms["b"].state is AtomState.RUNNING  # the stale owner wrote nothing


class RecordingStore(MemoryStore):
    """A MemoryStore that remembers each save's atom states and signals it."""

    def __init__(self) -> None:
        super().__init__()
        self.saves: list[dict[str, AtomState]] = []
        self.saved = threading.Condition()

    def save(self, execution_id: str, epoch: int, atoms: Sequence[AtomRecord] = (),
             execution: ExecutionChange | None = None, delegations: Sequence[Any] = ()) -> None:
        super().save(execution_id, epoch, atoms, execution, delegations)
        with self.saved:
            self.saves.append({a.name: a.state for a in atoms})
            self.saved.notify_all()


def test_pause_starts_nothing_until_resumed() -> None:
    log = Log()
    control = RunControl()
    store = RecordingStore()

    def a() -> None:
        log.add("a")
        control.pause()

    flow = linear(task(a, name="a"), task(lambda: log.add("b"), name="b"))
    thread, box = _in_thread(flow=flow, store=store, control=control)
    with store.saved:
        assert store.saved.wait_for(
            lambda: any(s.get("a") is AtomState.SUCCESS for s in store.saves), WAIT
        )
        batch = next(s for s in store.saves if s.get("a") is AtomState.SUCCESS)
    assert "b" not in batch  # not paused, b's RUNNING would be saved in this same batch
    assert log.events == ["a"]
    control.resume()
    thread.join(WAIT)
    assert box["outcome"].state is RunState.SUCCESS
    assert log.events == ["a", "b"]


def test_success_is_saved_together_with_the_next_running_task() -> None:
    store = RecordingStore()
    flow = linear(task(lambda: 1, name="a"), task(lambda: 2, name="b"))
    assert run_flow(flow, store=store).state is RunState.SUCCESS
    assert {"a": AtomState.SUCCESS, "b": AtomState.RUNNING} in store.saves


def test_abort_returns_at_once_and_writes_nothing_more() -> None:
    control = RunControl()
    store = RecordingStore()

    def a() -> None:
        control.abort()

    flow = linear(task(a, name="a"), task(lambda: 2, name="b"))
    outcome = run_flow(flow, store=store, control=control)
    assert outcome.state is RunState.ABANDONED and outcome.reason == "aborted"
    assert store.load(outcome.execution_id).atoms["a"].state is AtomState.RUNNING


def test_delegated_work_parks_the_execution() -> None:
    flow = unordered(task(Delegated, name="wait_human"), task(lambda: 1, name="quick"))
    store = MemoryStore()
    outcome = run_flow(flow, store=store)
    assert outcome.state is RunState.PARKED
    saved = store.load(outcome.execution_id)
    assert saved.state.value == "PARKED"
    assert saved.atoms["wait_human"].state is AtomState.DELEGATED
    assert saved.atoms["quick"].state is AtomState.SUCCESS
    # the core, resumed from the saved records, completes the delegation
    compiled = compile_flow(flow, {})
    core = Core(compiled, {}, saved.atoms)
    assert core.decide(10).only_delegated
    records = core.on_delegation_done("wait_human", 1, 11, result={"ok": True})
    assert records[0].state is AtomState.SUCCESS
    decision = core.decide(11)
    assert decision.finished and decision.execution is not None
    assert decision.execution.state.value == "SUCCESS"


def test_process_workers_run_importable_tasks() -> None:
    dispatcher = ProcessDispatcher(max_workers=1)
    try:
        flow = linear(proc_tasks.double, proc_tasks.add_pid)
        outcome = run_flow(flow, {"n": 20}, dispatcher=dispatcher)
    finally:
        dispatcher.shutdown(wait=True)
    assert outcome.state is RunState.SUCCESS
    value, pid = outcome.result["answer"]
    assert value == 41 and pid != os.getpid()


def test_process_workers_refuse_a_lambda_naming_the_task() -> None:
    dispatcher = ProcessDispatcher(max_workers=1)

    def nested() -> int:
        return 1

    try:
        with pytest.raises(TaskNotSendable, match=r"'anon'.*lambda"):
            run_flow(linear(task(lambda: 1, name="anon")), dispatcher=dispatcher)
        with pytest.raises(TaskNotSendable, match=r"'nested'.*nested function"):
            run_flow(linear(task(nested)), dispatcher=dispatcher)
    finally:
        dispatcher.shutdown(wait=True)


def test_resume_mid_subflow_retry_finishes_the_revert_and_runs_the_round_again() -> None:
    log = Log()
    control = RunControl()
    calls = {"c": 0}

    def undo_b() -> None:
        log.add("undo b")
        control.stop()

    def c(context: TaskContext) -> None:
        calls["c"] += 1
        log.add(f"c#{context.attempt}")
        if calls["c"] == 1:
            raise ConnectionError("first round fails")

    def b(context: TaskContext) -> None:
        log.add(f"b#{context.attempt}")

    sub = linear(task(b, name="b", revert=undo_b), task(c, name="c"), name="sub",
                 retry=Retry(times=1))
    flow = linear(task(lambda: log.add("a"), name="a"), sub, task(lambda: log.add("d"), name="d"))
    store = MemoryStore()
    first = run_flow(flow, store=store, job_id="j", control=control)
    assert first.state is RunState.SUSPENDED
    saved = store.load(first.execution_id).atoms
    assert saved["sub"].intention.value == "RETRY" and saved["b"].state is AtomState.REVERTED
    second = run_flow(flow, store=store, job_id="j", epoch=2)
    assert second.state is RunState.SUCCESS
    assert log.events == ["a", "b#1", "c#1", "undo b", "b#2", "c#2", "d"]


def test_the_core_is_pure_and_incremental() -> None:
    flow = compile_flow(linear(*[task(lambda: None, name=f"t{i}") for i in range(1000)]), {})
    core = Core(flow, {})
    decision = core.decide(0.0)
    assert [s.name for s in decision.starts] == ["t0"]
    for i in range(999):
        records = core.on_success(f"t{i}", 1, None, float(i))
        assert [r.name for r in records] == [f"t{i}"]
        decision = core.decide(float(i))
        assert [s.name for s in decision.starts] == [f"t{i + 1}"]
        assert [r.name for r in decision.records] == [f"t{i + 1}"]
    core.on_success("t999", 1, None, 999.0)
    assert core.decide(999.0).finished
    # an outcome for an attempt that is not current is ignored
    assert core.on_success("t5", 1, None, 1000.0) == []


class WatchedClock(FakeClock):
    """A fake clock that records the deadline of every wait and whether the run was paused."""

    def __init__(self, control: RunControl) -> None:
        super().__init__(0)
        self.control = control
        self.waits: list[tuple[bool, float | None]] = []
        self.changed = threading.Condition()

    def wait(self, events: Any, deadline: float | None, busy: bool) -> Any:
        with self.changed:
            self.waits.append((self.control.paused, deadline))
            self.changed.notify_all()
        return super().wait(events, deadline, busy)


def test_a_paused_run_does_not_spin_on_a_due_retry() -> None:
    control = RunControl()
    clock = WatchedClock(control)

    def flaky(context: TaskContext) -> str:
        if context.attempt == 1:
            control.pause()
            raise ConnectionError("down")
        return "ok"

    thread, box = _in_thread(flow=linear(task(flaky, provides="v", retry=Retry(times=1,
                                                                            delay=5))),
                             clock=clock, control=control)
    with clock.changed:
        assert clock.changed.wait_for(lambda: any(p and d is None for p, d in clock.waits), WAIT)
    assert all(deadline is None for paused, deadline in clock.waits if paused)
    control.resume()
    thread.join(WAIT)
    assert box["outcome"].state is RunState.SUCCESS and clock.jumps == [5]


class FlakyStore(MemoryStore):
    """A MemoryStore whose saves start failing with StoreUnavailable after `good` saves."""

    def __init__(self, good: int) -> None:
        super().__init__()
        self.good = good

    def save(self, execution_id: str, epoch: int, atoms: Sequence[AtomRecord] = (),
             execution: ExecutionChange | None = None, delegations: Sequence[Any] = ()) -> None:
        if self.good <= 0:
            from persistence import StoreUnavailable  # noqa: PLC0415

            raise StoreUnavailable("database is locked (simulated outage)")
        self.good -= 1
        super().save(execution_id, epoch, atoms, execution, delegations)


def test_a_store_outage_abandons_the_run_and_starts_nothing_more() -> None:
    log = Log()
    flow = linear(task(lambda: log.add("a"), name="a"), task(lambda: log.add("b"), name="b"))
    store = FlakyStore(good=1)  # the first save (a RUNNING) works, the next fails
    outcome = run_flow(flow, store=store)
    assert outcome.state is RunState.ABANDONED and outcome.reason == "store unavailable"
    assert "simulated outage" in str(outcome.error)
    assert log.events == ["a"]  # b's RUNNING was never saved, so b never started


FLOWS_FILE = '''
import os

from conductor.flow import Task, linear, task
from conductor.registry import registered_flow


@task(provides="doubled")
def double(n: int) -> int:
    return n * 2


class AddPid(Task):
    def execute(self, doubled: int) -> list[int]:
        return [doubled + 1, os.getpid()]


@registered_flow("file.double")
def build(inputs):
    return linear(double, AddPid(provides="answer"), inputs=["n"])
'''


def test_process_workers_run_tasks_of_a_flows_file_loaded_by_the_registry(
        tmp_path: Any) -> None:
    """A --flows FILE module has a generated name only the registry knows; spawned workers
    load the same file under that name (and nothing else) when a task of it arrives."""
    path = tmp_path / "file_flows.py"
    path.write_text(FLOWS_FILE)
    registry = Registry.from_specs([str(path)])
    compiled = registry.compile("file.double", {"n": 20})
    dispatcher = ProcessDispatcher(max_workers=1)
    try:
        outcome = run_flow(compiled, {"n": 20}, dispatcher=dispatcher)
    finally:
        dispatcher.shutdown(wait=True)
    assert outcome.state is RunState.SUCCESS, outcome.failure
    value, pid = outcome.result["answer"]
    assert value == 41 and pid != os.getpid()


def test_a_task_a_worker_cannot_import_fails_clearly_and_the_pool_survives(
        tmp_path: Any) -> None:
    """A module loaded by hand (not by the registry, not on the path) pickles in the parent
    but not in a worker: the attempt fails with TaskNotSendable naming the task; the pool
    keeps serving."""
    path = tmp_path / "stray_flows.py"
    path.write_text(FLOWS_FILE)
    spec = importlib.util.spec_from_file_location("stray_flows_by_hand", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["stray_flows_by_hand"] = module
    dispatcher = ProcessDispatcher(max_workers=1)
    try:
        spec.loader.exec_module(module)
        failed = run_flow(linear(module.double), {"n": 1}, dispatcher=dispatcher)
        assert failed.state is RunState.REVERTED and failed.failure is not None
        assert failed.failure.type == "conductor.engine.dispatch.TaskNotSendable"
        assert "'double'" in failed.failure.message
        assert "stray_flows_by_hand" in failed.failure.message
        fine = run_flow(linear(proc_tasks.double), {"n": 4}, dispatcher=dispatcher)
        assert fine.state is RunState.SUCCESS and fine.result == {"doubled": 8}
    finally:
        dispatcher.shutdown(wait=True)
        del sys.modules["stray_flows_by_hand"]
