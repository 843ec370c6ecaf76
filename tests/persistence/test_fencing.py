"""Two writers racing on one execution, on SQLite and PostgreSQL, in threads and in processes:
once the new owner's take-over has returned, the stale owner writes nothing and gets Fenced."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from persistence import (
    AtomRecord,
    AtomState,
    ExecutionChange,
    ExecutionState,
    ExecutionStore,
    Fenced,
    SqlStore,
    StoreUnavailable,
    open_store,
)

REPO = Path(__file__).resolve().parents[2]
STALE, NEW = 1, 2


def new_execution(store: ExecutionStore, job_id: str = "job-1") -> str:
    record = store.create_execution(job_id, "flow", "1", {})
    store.take_over(record.id, STALE, "stale")
    return record.id


def shared_by_new(store: ExecutionStore, execution_id: str) -> None:
    store.save(execution_id, NEW, [AtomRecord("shared", state=AtomState.SUCCESS, attempt=1,
                                              result={"by": "new"})])


def race_in_threads(store: SqlStore, job_id: str, change: ExecutionChange | None) -> None:
    execution_id = new_execution(store, job_id)
    start = threading.Barrier(2)
    taken = threading.Event()
    saved: list[tuple[int, bool]] = []  # (i, take-over had returned before the save began)
    fenced: list[int] = []

    def stale_writer() -> None:
        start.wait()
        for i in range(100_000):
            began_after_take_over = taken.is_set()
            try:
                store.save(execution_id, STALE, [
                    AtomRecord("shared", state=AtomState.SUCCESS, result={"by": "stale"}),
                    AtomRecord(f"stale-{i}", state=AtomState.SUCCESS, result=i),
                ], change)
            except Fenced:
                fenced.append(i)
                return
            saved.append((i, began_after_take_over))

    writer = threading.Thread(target=stale_writer)
    writer.start()
    start.wait()
    store.take_over(execution_id, NEW, "new")
    taken.set()
    shared_by_new(store, execution_id)
    writer.join(timeout=60)
    assert not writer.is_alive()

    assert len(fenced) == 1, "the stale writer was never fenced"
    assert not [i for i, after in saved if after], "a save begun after take-over landed"
    atoms = store.load(execution_id).atoms
    assert atoms["shared"].result == {"by": "new"}
    # Exactly the saves that returned are there: the fenced one left nothing behind.
    assert {name for name in atoms if name.startswith("stale-")} == {
        f"stale-{i}" for i, _ in saved
    }


@pytest.mark.parametrize("with_change", [False, True], ids=["atoms", "atoms+execution"])
def test_threads_race_and_the_stale_writer_is_fenced(
    sql_store: SqlStore, with_change: bool
) -> None:
    """Atom-only saves and saves with an execution change take different fences."""
    change = ExecutionChange(ExecutionState.RUNNING) if with_change else None
    for round_number in range(3):
        race_in_threads(sql_store, f"job-{round_number}", change)


def run_stale_writer(url: str, execution_id: str, mode: str, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.persistence.stale_writer", url, execution_id, str(STALE),
         mode, *extra],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    """Child processes of a test, stopped by PID (and resumed first if paused) at the end."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)
            proc.kill()
        proc.communicate(timeout=30)


def wait_until_stopped(proc: subprocess.Popen[str]) -> None:
    """Block until the child has stopped itself with SIGSTOP (no polling)."""
    _, status = os.waitpid(proc.pid, os.WUNTRACED)
    if not os.WIFSTOPPED(status):
        proc.returncode = os.waitstatus_to_exitcode(status)
        _, err = proc.communicate()
        pytest.fail(f"the writer process ended before pausing: {err}")


def finish(proc: subprocess.Popen[str]) -> list[list[str]]:
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    return [line.split() for line in out.splitlines()]


@pytest.mark.timeout(180)
def test_processes_race_and_the_stale_writer_is_fenced(
    migrated_database_url: str, tmp_path: Path, processes: list[subprocess.Popen[str]]
) -> None:
    with open_store(migrated_database_url) as store:
        execution_id = new_execution(store)
        marker = tmp_path / "taken-over"
        # The writer starts saving; it is fenced by whichever take-over lands while it runs.
        proc = run_stale_writer(migrated_database_url, execution_id, "race", "-1", str(marker))
        processes.append(proc)
        assert proc.stdout is not None
        first = proc.stdout.readline().split()  # it is writing now
        assert first[:2] == ["ok", "0"], [*first, proc.stderr.read() if proc.stderr else ""]
        store.take_over(execution_id, NEW, "new")
        marker.touch()
        shared_by_new(store, execution_id)
        lines = [first, *finish(proc)]

        assert lines[-1][0] == "fenced"
        ok = [line for line in lines if line[0] == "ok"]
        assert not [line for line in ok if line[2] == "1"], "a save begun after take-over landed"
        atoms = store.load(execution_id).atoms
        assert atoms["shared"].result == {"by": "new"}
        assert {n for n in atoms if n.startswith("stale-")} == {f"stale-{line[1]}" for line in ok}


@pytest.mark.timeout(180)
def test_a_writer_paused_between_writes_is_fenced_when_it_continues(
    migrated_database_url: str, processes: list[subprocess.Popen[str]]
) -> None:
    """The peer's failure: an owner paused past its claim (SIGSTOP), then continued."""
    with open_store(migrated_database_url) as store:
        execution_id = new_execution(store)
        proc = run_stale_writer(migrated_database_url, execution_id, "pause-between", "3")
        processes.append(proc)
        wait_until_stopped(proc)
        store.take_over(execution_id, NEW, "new")
        shared_by_new(store, execution_id)
        os.kill(proc.pid, signal.SIGCONT)
        lines = finish(proc)

        assert lines == [["ok", "0", "0"], ["ok", "1", "0"], ["ok", "2", "0"], ["fenced", "3"]]
        atoms = store.load(execution_id).atoms
        assert atoms["shared"].result == {"by": "new"}
        assert sorted(n for n in atoms if n.startswith("stale-")) == ["stale-0", "stale-1",
                                                                       "stale-2"]


@pytest.mark.postgres
@pytest.mark.timeout(180)
def test_postgres_writer_paused_inside_a_transaction_does_not_block_the_new_owner(
    migrated_postgres_url: str, processes: list[subprocess.Popen[str]]
) -> None:
    """Paused while holding the execution's row lock: the server ends its idle transaction
    (idle_in_transaction_timeout, 1 s in the writer), the take-over goes through, and the
    writer's uncommitted rows vanish; continued, it retries and is fenced."""
    with open_store(migrated_postgres_url, retry_for=30.0) as store:
        execution_id = new_execution(store)
        proc = run_stale_writer(migrated_postgres_url, execution_id, "pause-inside", "2")
        processes.append(proc)
        wait_until_stopped(proc)
        store.take_over(execution_id, NEW, "new")  # waits for the row lock, then gets it
        shared_by_new(store, execution_id)
        os.kill(proc.pid, signal.SIGCONT)
        lines = finish(proc)

        assert lines == [["ok", "0", "0"], ["ok", "1", "0"], ["fenced", "2"]]
        atoms = store.load(execution_id).atoms
        assert atoms["shared"].result == {"by": "new"}
        assert sorted(n for n in atoms if n.startswith("stale-")) == ["stale-0", "stale-1"]


@pytest.mark.timeout(180)
def test_sqlite_writer_paused_inside_a_transaction_makes_others_unavailable_not_stuck(
    migrated_sqlite_url: str, processes: list[subprocess.Popen[str]]
) -> None:
    """SQLite has no server to end a paused writer's transaction: others get StoreUnavailable
    within their budget (never a hang, never a partial write); once it continues, its
    transaction commits (it was still the owner) and the next take-over fences it."""
    with open_store(migrated_sqlite_url, retry_for=0.5, busy_timeout=0.1) as impatient:
        execution_id = new_execution(impatient)
        proc = run_stale_writer(migrated_sqlite_url, execution_id, "pause-inside", "2")
        processes.append(proc)
        wait_until_stopped(proc)
        with pytest.raises(StoreUnavailable, match="database is locked"):
            impatient.take_over(execution_id, NEW, "new")
        os.kill(proc.pid, signal.SIGCONT)
    with open_store(migrated_sqlite_url, retry_for=30.0) as store:
        store.take_over(execution_id, NEW, "new")
        shared_by_new(store, execution_id)
        lines = finish(proc)

        assert lines[:3] == [["ok", "0", "0"], ["ok", "1", "0"], ["ok", "2", "0"]]
        assert lines[-1][0] == "fenced"
        ok = {f"stale-{line[1]}" for line in lines if line[0] == "ok"}
        atoms = store.load(execution_id).atoms
        assert atoms["shared"].result == {"by": "new"}
        assert {n for n in atoms if n.startswith("stale-")} == ok
