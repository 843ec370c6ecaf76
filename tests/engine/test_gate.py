"""The start gate: a saved RUNNING attempt starts only while RunControl.gate says so.

The conductor closes the gate while its ZooKeeper session is not provably alive (e.g. just after
a SIGCONT), so an owner that may have lost its claim never starts a task.
"""

from __future__ import annotations

import threading
from typing import Any

from conductor.engine import RunControl, RunState, run_flow
from conductor.flow import linear, task
from persistence import AtomState, MemoryStore

WAIT = 10.0


def test_a_closed_gate_holds_a_saved_start_until_it_opens() -> None:
    ran: list[str] = []
    gate_open = threading.Event()
    asked = threading.Event()

    def gate() -> bool:
        asked.set()
        return gate_open.is_set()

    control = RunControl()
    control.gate = gate
    store = MemoryStore()
    flow = linear(task(lambda: ran.append("a"), name="a"), task(lambda: ran.append("b"), name="b"))
    box: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: box.setdefault(
        "outcome", run_flow(flow, store=store, job_id="job-1", control=control)))
    thread.start()
    assert asked.wait(WAIT)
    execution = store.find_by_job("job-1")
    assert execution is not None
    assert execution.atoms["a"].state is AtomState.RUNNING  # saved before the gate is asked
    assert ran == []
    gate_open.set()
    thread.join(WAIT)
    assert box["outcome"].state is RunState.SUCCESS
    assert ran == ["a", "b"]


def test_stopping_while_the_gate_is_closed_suspends_without_starting_the_held_task() -> None:
    ran: list[str] = []
    asked = threading.Event()
    control = RunControl()

    def gate() -> bool:
        asked.set()
        return False

    control.gate = gate
    store = MemoryStore()
    flow = linear(task(lambda: ran.append("a"), name="a"))
    box: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: box.setdefault(
        "outcome", run_flow(flow, store=store, job_id="job-2", control=control)))
    thread.start()
    assert asked.wait(WAIT)
    control.stop(grace=5)
    thread.join(WAIT)
    assert box["outcome"].state is RunState.SUSPENDED
    assert ran == []
    execution = store.find_by_job("job-2")
    assert execution is not None
    # the held attempt is saved RUNNING: the next owner runs it (same attempt), as after a crash
    assert execution.atoms["a"].state is AtomState.RUNNING


def test_abort_while_the_gate_is_closed_returns_at_once() -> None:
    asked = threading.Event()
    control = RunControl()

    def gate() -> bool:
        asked.set()
        return False

    control.gate = gate
    box: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: box.setdefault(
        "outcome", run_flow(linear(task(lambda: None, name="a")), control=control)))
    thread.start()
    assert asked.wait(WAIT)
    control.abort()
    thread.join(WAIT)
    assert box["outcome"].state is RunState.ABANDONED


class _ResumedDuringATurn(RunControl):
    """`paused` reads True once and False afterwards: a resume() landing between two readings
    of the flag within one turn of the runner's loop (a ZooKeeper connection that dropped and
    came back with the same session at that instant)."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    @property  # type: ignore[override]
    def paused(self) -> bool:
        self.reads += 1
        if self.reads == 1:
            threading.Timer(0.05, self._wake).start()  # what resume() does
            return True
        return False

    @paused.setter
    def paused(self, value: bool) -> None:
        pass


def test_a_resume_within_a_turn_starts_the_task_on_the_next_turn() -> None:
    ran: list[str] = []
    outcome = run_flow(linear(task(lambda: ran.append("a"), name="a")),
                       control=_ResumedDuringATurn())
    assert outcome.state is RunState.SUCCESS
    assert ran == ["a"]
