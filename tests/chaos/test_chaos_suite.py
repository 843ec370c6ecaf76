"""The chaos suite end to end: real conductor processes on a real 3-server ZooKeeper ensemble
and SQLite, SIGKILLed, SIGSTOPped and losing their ZooKeeper leader while 200 jobs run; then
every promise checked from the board, the database and the task ledger. Also the `conductor
chaos` command: on the user's own flows, its exit status when a check fails, and its refusal
of bad settings before anything starts. Seeds are fixed; every process is stopped by PID."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conductor.chaos import ChaosConfig, ChaosRunner
from conductor.cli.main import main

SEED = 20261128


@pytest.mark.chaos
@pytest.mark.slow
def test_two_hundred_jobs_survive_kills_pauses_and_leader_kills(tmp_path: Path) -> None:
    # 200 jobs x 5 steps of 0.2 s on 3 conductors of 4 slots: some 20 chaos events.
    config = ChaosConfig(seed=SEED, seconds=0.2, interval=1.2, work_dir=tmp_path / "run")
    result = ChaosRunner(config, say=print).run()
    report = result.report
    print(report.render())
    assert report.ok, report.render()
    summary = report.summary
    assert summary.completed == 200 and summary.duplicates == 0
    # The scenario really happened: each kind of chaos, and jobs changed hands.
    assert summary.kills >= 1 and summary.pauses >= 1 and summary.leader_kills >= 1
    assert summary.takeovers >= 1 and summary.max_time_to_resume is not None
    assert summary.task_starts >= 200 * 5


USER_FLOWS = '''
import time
from conductor.flow import graph, task
from conductor.registry import registered_flow


def fetch(n):
    time.sleep(0.02)
    return n + 1


def left(x):
    time.sleep(0.05)
    return x * 2


def right(x):
    time.sleep(0.05)
    return x * 3


def join(a, b):
    return a + b


@registered_flow("user.diamond")
def diamond(inputs):
    return graph(task(fetch, name="fetch", provides="x"),
                 task(left, name="left", provides="a"),
                 task(right, name="right", provides="b"),
                 task(join, name="join", provides="total"), name="diamond")
'''


@pytest.mark.chaos
@pytest.mark.slow
def test_the_command_shakes_the_users_own_flows(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    flows = tmp_path / "user_flows.py"
    flows.write_text(USER_FLOWS)
    status = main(["chaos", "--flows", str(flows), "--flow", "user.diamond",
                   "--inputs", '{"n": 1}', "--jobs", "40", "--interval", "1", "--seed", "3",
                   "--work-dir", str(tmp_path / "run"), "--json", "--quiet"])
    out = capsys.readouterr().out
    report = json.loads(out)
    assert status == 0, out
    assert report["ok"] is True
    assert report["summary"]["completed"] == 40
    assert report["summary"]["task_starts"] >= 40 * 4  # recorded by --task-ledger
    assert set(report["checks"]) >= {"completed", "no_overlap", "no_stale_write",
                                     "conductors_healthy", "no_unexpected_errors"}


@pytest.mark.chaos
def test_the_command_exits_1_listing_the_failing_checks(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The jobs succeed, but the run was told to expect REVERTED: `completed` must fail.
    status = main(["chaos", "--jobs", "4", "--steps", "1", "--seconds", "0",
                   "--kill-weight", "0", "--pause-weight", "0", "--leader-kill-weight", "0",
                   "--expect", "REVERTED", "--work-dir", str(tmp_path / "run"), "--quiet"])
    out = capsys.readouterr().out
    assert status == 1, out
    assert "FAIL completed (8 problems)" in out  # board state and execution state, per job
    assert "completed with state SUCCESS, expected REVERTED" in out
    assert "PASS no_overlap" in out
    assert out.strip().endswith("FAILED: completed")


@pytest.mark.parametrize(("args", "message"), [
    (["--jobs", "0"], "jobs must be an integer >= 1, got 0"),
    (["--conductors", "1"], "conductors must be an integer >= 2"),
    (["--flow", "no.such.flow", "--inputs", "{}"], "flow 'no.such.flow' cannot run: no flow"),
    (["--flow", "demo.steps", "--inputs", "[1]"], "--inputs must be a JSON object"),
    (["--inputs", "{nope"], "--inputs is not valid JSON"),
    (["--flow", "other.flow"], "inputs are required for flow 'other.flow'"),
    (["--session-timeout", "0.1"], "session_timeout must be at least 2 ZooKeeper ticks"),
    (["--steps", "0"], "steps must be an integer >= 1"),
])
def test_the_command_refuses_bad_settings_before_starting_anything(
        args: list[str], message: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    work = tmp_path / "run"
    assert main(["chaos", "--work-dir", str(work), *args]) == 2
    assert message in capsys.readouterr().err
    assert not work.exists()


def test_the_command_refuses_a_work_directory_holding_an_earlier_run(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "task-ledger.jsonl").write_text('{"job": "old"}\n')
    assert main(["chaos", "--work-dir", str(tmp_path)]) == 2
    assert "already holds a chaos run (task-ledger.jsonl)" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["task-ledger.jsonl"]
