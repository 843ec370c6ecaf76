"""Resume after a real crash: SIGKILL a child mid-flow, resume in another process, and count
from the append-only ledger how often each task ran."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from persistence import AtomState, open_store

ROOT = Path(__file__).resolve().parents[2]
WAIT = 60.0


def _ledger(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _wait_for(predicate: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)  # polling a file for a condition, with a deadline


def _child(url: str, ledger: Path, epoch: int, block_at: str, mode: str
           ) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.engine.crash_child", url, str(ledger), "job-1",
         str(epoch), block_at, mode],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _kill_when(child: subprocess.Popen[str], ledger: Path, event: str, task: str) -> None:
    try:
        _wait_for(lambda: any(e["event"] == event and e["task"] == task
                              for e in _ledger(ledger)), f"{event} of {task}")
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(WAIT)
    assert child.returncode == -signal.SIGKILL


def _finish(child: subprocess.Popen[str]) -> dict[str, Any]:
    out, err = child.communicate(timeout=WAIT)
    assert child.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.slow
def test_sigkill_mid_flow_then_resume_runs_only_what_was_not_saved(
    migrated_sqlite_url: str, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger.jsonl"
    first = _child(migrated_sqlite_url, ledger, 1, "run:t3", "ok")
    _kill_when(first, ledger, "run", "t3")

    store = open_store(migrated_sqlite_url)
    try:
        saved = store.find_by_job("job-1")
        assert saved is not None
        succeeded = {n for n, a in saved.atoms.items() if a.state is AtomState.SUCCESS}
        assert succeeded == {"t0", "t1", "t2"}
        assert saved.atoms["t3"].state is AtomState.RUNNING and saved.atoms["t3"].attempt == 1
    finally:
        store.close()

    second = _child(migrated_sqlite_url, ledger, 2, "none", "ok")
    assert _finish(second)["state"] == "SUCCESS"

    runs = [e for e in _ledger(ledger) if e["event"] == "run"]
    counts = Counter(e["task"] for e in runs)
    for name in succeeded:
        assert counts[name] == 1, f"{name} ran {counts[name]} times though its SUCCESS was saved"
    t3 = [e for e in runs if e["task"] == "t3"]
    assert len(t3) == 2 and t3[0]["pid"] != t3[1]["pid"]
    assert t3[0]["attempt"] == t3[1]["attempt"] == 1 and t3[0]["key"] == t3[1]["key"]
    assert counts["t4"] == counts["t5"] == 1


@pytest.mark.slow
def test_sigkill_mid_revert_then_resume_finishes_the_revert(
    migrated_sqlite_url: str, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger.jsonl"
    first = _child(migrated_sqlite_url, ledger, 1, "revert:t3", "fail")
    _kill_when(first, ledger, "revert", "t3")

    second = _child(migrated_sqlite_url, ledger, 2, "none", "fail")
    assert _finish(second)["state"] == "REVERTED"

    entries = _ledger(ledger)
    runs = Counter(e["task"] for e in entries if e["event"] == "run")
    assert all(count == 1 for count in runs.values()) and len(runs) == 6  # nothing re-executed
    reverts = [e["task"] for e in entries if e["event"] == "revert"]
    assert reverts == ["t4", "t3", "t3", "t2", "t1", "t0"]  # t3's revert re-ran after the kill
    store = open_store(migrated_sqlite_url)
    try:
        saved = store.find_by_job("job-1")
        assert saved is not None and saved.failure is not None
        assert saved.failure.message == "the last step fails"
    finally:
        store.close()
