"""The `conductor` command line: output for people and for programs, exit statuses, errors."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from conductor.cli.main import main
from jobboard.board import JobBoard
from jobboard.zkserver import ZooKeeperServers, free_port
from persistence import ExecutionChange, ExecutionState, Failure, open_store
from tests.conductor.conftest import env_without_config


@pytest.fixture
def cli(zk_server: ZooKeeperServers, zk_root: str, migrated_sqlite_url: str,
        capsys: pytest.CaptureFixture[str]) -> Any:
    """Run the CLI in-process against this test's board root and database."""

    def run(*argv: str, expect: int = 0) -> str:
        command, rest = argv[0], list(argv[1:])
        flags = ["--zk", zk_server.connect_string, "--root", zk_root]
        if command in ("show", "history", "gc", "db"):
            flags += ["--db", migrated_sqlite_url]
        if command == "db":
            flags = ["--db", migrated_sqlite_url]
        if command in ("history",):
            flags = ["--db", migrated_sqlite_url]
        status = main([command, *rest, *flags])
        out, err = capsys.readouterr()
        assert status == expect, f"exit {status} (wanted {expect}); stderr: {err}"
        run.err = err  # type: ignore[attr-defined]
        return out

    return run


@pytest.fixture
def board(zk_server: ZooKeeperServers, zk_root: str) -> Any:
    made = JobBoard.connect(zk_server.connect_string, zk_root)
    yield made
    made.close()


def test_post_prints_the_job_id_and_jobs_lists_it(cli: Any) -> None:
    job = cli("post", "demo.steps", "--inputs", '{"steps": 2}', "--priority", "7").strip()
    assert job.startswith("job-992-")
    table = cli("jobs")
    header, row = table.splitlines()[:2]
    assert header.split()[:5] == ["ID", "STATE", "FLOW", "NAME", "PRIORITY"]
    assert row.split()[:5] == [job, "UNCLAIMED", "demo.steps", "demo.steps", "7"]
    listed = json.loads(cli("jobs", "--json"))
    assert listed[0]["id"] == job and listed[0]["state"] == "UNCLAIMED"
    assert listed[0]["priority"] == 7 and listed[0]["flow"] == "demo.steps"


def test_post_with_a_key_twice_returns_the_first_job(cli: Any) -> None:
    first = json.loads(cli("post", "f", "--key", "order-17", "--json"))
    second = json.loads(cli("post", "f", "--key", "order-17", "--json"))
    assert first["id"] == second["id"]
    assert len(json.loads(cli("jobs", "--json"))) == 1


@pytest.mark.parametrize(("inputs", "message"), [
    ("{not json", "--inputs is not valid JSON: Expecting property name"),
    ("[1, 2]", "--inputs must be a JSON object, got list"),
])
def test_bad_inputs_are_usage_errors(cli: Any, inputs: str, message: str) -> None:
    cli("post", "f", "--inputs", inputs, expect=2)
    assert message in cli.err


def test_a_bad_priority_is_refused_with_the_reason(cli: Any) -> None:
    cli("post", "f", "--priority", "1000", expect=1)
    assert "priority" in cli.err and "999" in cli.err


def test_errors_are_json_on_stderr_with_json(cli: Any) -> None:
    cli("post", "f", "--inputs", "[]", "--json", expect=2)
    error = json.loads(cli.err)
    assert error["status"] == 2 and "JSON object" in error["error"]


def test_wait_exit_status_follows_the_outcome(cli: Any, board: JobBoard) -> None:
    ok, failed, dead = (board.post(n, "f", {}).id for n in ("ok", "failed", "dead"))
    board.complete(board.claim(ok, "t"), {"state": "SUCCESS", "result": {"n": 1}})
    board.complete(board.claim(failed, "t"), {"state": "REVERTED",
                                              "failure": {"type": "ValueError",
                                                          "message": "boom"}})
    board.trash(dead, "poison")
    assert "SUCCESS" in cli("wait", ok)
    assert json.loads(cli("wait", ok, "--json"))["result"] == {"n": 1}
    assert "REVERTED: ValueError: boom" in cli("wait", failed, expect=1)
    assert "TRASHED: poison" in cli("wait", dead, expect=1)


def test_wait_times_out_with_status_2(cli: Any, board: JobBoard) -> None:
    job = board.post("slow", "f", {}).id
    cli("wait", job, "--timeout", "0.2", expect=2)
    assert "no outcome" in cli.err


def test_trash_and_restore(cli: Any, board: JobBoard) -> None:
    job = board.post("x", "f", {}).id
    cli("trash", job, "--reason", "bad data")
    trashed = json.loads(cli("jobs", "--trashed", "--json"))
    assert [(t["id"], t["reason"]) for t in trashed] == [(job, "bad data")]
    assert cli("jobs").splitlines()[1:] == []
    cli("restore", job)
    assert json.loads(cli("jobs", "--json"))[0]["state"] == "UNCLAIMED"


def test_trash_refuses_a_job_held_by_a_conductor_unless_forced(cli: Any, board: JobBoard) -> None:
    job = board.post("x", "f", {}).id
    board.claim(job, "someone")
    cli("trash", job, expect=1)
    assert "claimed" in cli.err
    cli("trash", job, "--force")


def test_cancel_marks_a_pending_job(cli: Any, board: JobBoard) -> None:
    job = board.post("x", "f", {}).id
    assert "cancel requested" in cli("cancel", job)
    assert board.get(job).document["cancel"]["by"]  # type: ignore[index]
    cli("trash", job)
    cli("cancel", job, expect=1)
    assert "already trashed" in cli.err


def test_status_counts_the_backlog_and_lists_conductors(cli: Any, board: JobBoard) -> None:
    board.register("conductors", "c1", {"host": "h", "pid": 1, "max_jobs": 4})
    a, _ = board.post("a", "f", {}), board.post("b", "f", {})
    board.claim(a.id, "c1")
    status = json.loads(cli("status", "--json"))
    assert status["backlog"] == {"UNCLAIMED": 1, "CLAIMED": 1, "PARKED": 0, "TRASHED": 0}
    assert [(c["id"], c["jobs"]) for c in status["conductors"]] == [("c1", [a.id])]
    text = cli("status")
    assert "conductors: 1" in text and "1 unclaimed, 1 claimed" in text


def test_show_joins_the_board_and_the_saved_execution(cli: Any, board: JobBoard,
                                                      migrated_sqlite_url: str) -> None:
    job = board.post("x", "f", {}).id
    with open_store(migrated_sqlite_url) as store:
        execution = store.create_execution(job, "f", "1", {})
        store.take_over(execution.id, 5, "c1@h:1")
        store.save(execution.id, 5, execution=ExecutionChange(
            ExecutionState.FAILED, failure=Failure("ValueError", "boom")))
    shown = json.loads(cli("show", job, "--json"))
    assert shown["job"]["state"] == "UNCLAIMED"
    assert shown["execution"]["state"] == "FAILED"
    assert shown["execution"]["owners"][0]["epoch"] == 5
    text = cli("show", job)
    assert "failure:   ValueError: boom" in text and "c1@h:1" in text
    cli("show", "job-999-0000000000000-00000000", expect=1)


def test_db_upgrade_and_current(cli: Any, tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path}/sub/dir/fresh.db"
    assert main(["db", "upgrade", "--db", url]) == 0
    assert main(["db", "current", "--db", url, "--json"]) == 0


def test_an_unreachable_zookeeper_exits_3_quickly() -> None:
    port = free_port()
    result = subprocess.run(
        [sys.executable, "-m", "conductor.cli.main", "jobs", "--zk", f"127.0.0.1:{port}",
         "--connect-timeout", "1"], check=False, capture_output=True, text=True, timeout=60)
    assert result.returncode == 3, result.stderr
    assert f"could not connect to ZooKeeper at 127.0.0.1:{port}" in result.stderr


def test_run_without_flows_is_refused(zk_server: ZooKeeperServers, zk_root: str,
                                      migrated_sqlite_url: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "conductor.cli.main", "run", "--zk", zk_server.connect_string,
         "--root", zk_root, "--db", migrated_sqlite_url],
        check=False, capture_output=True, text=True, timeout=60, env=env_without_config())
    assert result.returncode == 1
    assert "no flows to run" in result.stderr


def test_run_on_an_old_schema_says_what_to_run(zk_server: ZooKeeperServers, zk_root: str,
                                              sqlite_url: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "conductor.cli.main", "run", "--zk", zk_server.connect_string,
         "--root", zk_root, "--db", sqlite_url, "--flows", "conductor.demo"],
        check=False, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert f"run: conductor db upgrade --db {sqlite_url}" in result.stderr
