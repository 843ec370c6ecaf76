"""The `conductor` command line: output for people and for programs, exit statuses, errors."""

from __future__ import annotations

import json
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import IO, Any

import pytest

from conductor.cli.main import main
from jobboard.board import JobBoard
from jobboard.model import JobState
from jobboard.testing.zkserver import ZooKeeperServers, free_port
from persistence import (
    AtomRecord,
    AtomState,
    ExecutionChange,
    ExecutionState,
    Failure,
    migrate,
    open_store,
)
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


# -- usage errors and exit statuses ------------------------------------------------------------

def test_a_usage_error_with_json_is_one_json_error_on_stderr(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["post", "f", "--priority", "abc", "--json"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert json.loads(err) == {"error": "conductor post: argument --priority: invalid int value: "
                               "'abc'", "status": 2, "kind": "usage"}
    # --json anywhere, even where the failing parser has no such option; an abbreviation too
    for argv in (["--json", "post"], ["post", "--jso"], ["db", "--json"],
                 ["show", "--json", "j", "--limit", "3"]):
        assert main(argv) == 2, argv
        out, err = capsys.readouterr()
        error = json.loads(err)
        assert (out, error["status"], error["kind"]) == ("", 2, "usage"), argv
        assert error["error"].startswith("conductor"), argv


def test_a_usage_error_without_json_is_argparses_message(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["post", "f", "--priority", "abc"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("usage: conductor post ")
    assert err.endswith("conductor post: error: argument --priority: invalid int value: 'abc'\n")
    # after `--`, --json is an operand, not the option
    assert main(["wait", "--timeout", "x", "--", "--json"]) == 2
    assert capsys.readouterr()[1].startswith("usage: conductor wait ")


def test_wait_tells_a_timeout_from_a_usage_error_by_the_json_kind(
        cli: Any, board: JobBoard) -> None:
    job = board.post("slow", "f", {}).id
    cli("wait", job, "--timeout", "0.2", "--json", expect=2)
    timeout = json.loads(cli.err)
    assert (timeout["status"], timeout["kind"]) == (2, "timeout") and job in timeout["error"]
    cli("wait", job, "--timeout", "soon", "--json", expect=2)
    usage = json.loads(cli.err)
    assert (usage["status"], usage["kind"]) == (2, "usage") and "--timeout" in usage["error"]
    cli("wait", "job-999-0000000000000-00000000", "--json", expect=1)
    assert json.loads(cli.err)["kind"] == "failed"


def test_help_says_what_json_means_for_run_and_serve(
        capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("run", "serve"):
        with pytest.raises(SystemExit) as exited:
            main([command, "--help"])
        assert exited.value.code == 0
        text = " ".join(capsys.readouterr().out.split())
        assert "--json print a JSON line on stdout when" in text, command
        assert "one when stopped" in text, command


# -- --json of every command -------------------------------------------------------------------

def test_cancel_wakes_a_parked_job_with_the_request_in_it(cli: Any, board: JobBoard) -> None:
    job = board.post("x", "f", {}).id
    board.park(board.claim(job, "someone"))
    assert "cancel requested (parked)" in cli("cancel", job)
    woken = board.get(job)
    assert woken.state is JobState.UNCLAIMED and woken.document["cancel"]["by"]  # type: ignore[index]


def test_trash_restore_and_cancel_with_json(cli: Any, board: JobBoard) -> None:
    job = board.post("x", "f", {}, priority=4).id
    trashed = json.loads(cli("trash", job, "--reason", "bad data", "--json"))
    assert trashed == {"job": job, "state": "TRASHED", "reason": "bad data"}
    restored = json.loads(cli("restore", job, "--json"))
    assert (restored["id"], restored["state"], restored["priority"], restored["flow"]) == (
        job, "UNCLAIMED", 4, "f")
    before = time.time()
    cancelled = json.loads(cli("cancel", job, "--json"))
    assert cancelled["job"] == job and cancelled["state"] == "UNCLAIMED"
    assert cancelled["cancel"]["by"] and before <= cancelled["cancel"]["at"] <= time.time()
    assert board.get(job).document["cancel"] == cancelled["cancel"]  # type: ignore[index]


def test_history_with_json(cli: Any, migrated_sqlite_url: str) -> None:
    with open_store(migrated_sqlite_url) as store:
        ok = store.create_execution("job-500-0000000000001-0000000a", "f", "1", {"n": 1})
        store.take_over(ok.id, 2, "c1@h:1")
        store.save(ok.id, 2, execution=ExecutionChange(ExecutionState.SUCCESS, result={"r": 1}))
        bad = store.create_execution("job-500-0000000000002-0000000b", "g", "3", {})
        store.take_over(bad.id, 1, "c2@h:2")
        store.save(bad.id, 1, execution=ExecutionChange(
            ExecutionState.FAILED, failure=Failure("ValueError", "boom")))
    listed = json.loads(cli("history", "--json"))
    assert [e["job"] for e in listed] == [bad.job_id, ok.job_id]  # newest first
    failed, succeeded = listed
    assert (failed["flow"], failed["flow_version"], failed["state"], failed["owner"],
            failed["epoch"]) == ("g", "3", "FAILED", "c2@h:2", 1)
    assert failed["failure"]["type"] == "ValueError" and failed["finished_at"]
    assert (succeeded["state"], succeeded["result"], succeeded["failure"]) == (
        "SUCCESS", {"r": 1}, None)
    assert [o["owner"] for o in succeeded["owners"]] == ["c1@h:1"]
    only_f = json.loads(cli("history", "--flow", "f", "--json"))
    assert [e["id"] for e in only_f] == [ok.id]
    assert json.loads(cli("history", "--state", "FAILED", "--json"))[0]["id"] == bad.id


def test_gc_with_json(cli: Any, board: JobBoard, migrated_sqlite_url: str) -> None:
    job = board.post("done", "f", {}).id
    board.complete(board.claim(job, "t"), {"state": "SUCCESS"})
    with open_store(migrated_sqlite_url) as store:
        done = store.create_execution(job, "f", "1", {})
        store.take_over(done.id, 1, "c1@h:1")
        store.save(done.id, 1, execution=ExecutionChange(ExecutionState.SUCCESS))
        store.create_execution("job-500-0000000000003-0000000c", "f", "1", {})  # unfinished
    assert json.loads(cli("gc", "--older-than", "1d", "--json")) == {
        "executions": 0, "outcomes": 0}
    assert json.loads(cli("gc", "--older-than", "0", "--json")) == {
        "executions": 1, "outcomes": 1}
    cli("gc", "--older-than", "soon", "--json", expect=2)
    assert json.loads(cli.err)["kind"] == "usage"


def test_db_upgrade_and_current_with_json(tmp_path: Any,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path}/fresh.db"
    assert main(["db", "current", "--db", url, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"db": url, "revision": None,
                                                   "head": migrate.head()}
    assert main(["db", "upgrade", "--db", url, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"db": url, "revision": migrate.head()}
    assert main(["db", "current", "--db", url, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["revision"] == migrate.head()


# -- show --------------------------------------------------------------------------------------

def test_show_lists_every_task_and_the_owner_history(cli: Any, board: JobBoard,
                                                     migrated_sqlite_url: str) -> None:
    job = board.post("order-17", "f", {}).id
    t0 = time.time() - 60
    with open_store(migrated_sqlite_url) as store:
        execution = store.create_execution(job, "f", "1", {})
        store.take_over(execution.id, 3, "c1@h:1")
        store.save(execution.id, 3, atoms=[
            AtomRecord("fetch", state=AtomState.SUCCESS, attempt=1, result=1,
                       started_at=t0, finished_at=t0 + 2.5),
            AtomRecord("charge", state=AtomState.FAILURE, attempt=1,
                       failure=Failure("TimeoutError", "gateway slow"),
                       started_at=t0 + 3, finished_at=t0 + 4),
        ], execution=ExecutionChange(ExecutionState.RUNNING))
        store.take_over(execution.id, 7, "c2@h:2")  # c1 died; c2 resumes with a higher epoch
        store.save(execution.id, 7, atoms=[
            AtomRecord("charge", state=AtomState.RUNNING, attempt=2, started_at=t0 + 30),
            AtomRecord("ship", state=AtomState.PENDING),
        ])
    board.claim(job, "c2")

    shown = json.loads(cli("show", job, "--json"))
    assert shown["job"]["state"] == "CLAIMED" and shown["job"]["owner"]["id"] == "c2"
    run = shown["execution"]
    assert (run["state"], run["epoch"], run["owner"]) == ("RUNNING", 7, "c2@h:2")
    tasks = {t["name"]: t for t in run["tasks"]}
    assert [t["name"] for t in run["tasks"]] == ["fetch", "charge", "ship"]  # start order
    assert {k: tasks["fetch"][k] for k in ("state", "attempt", "started_at", "finished_at",
                                           "failure")} == {
        "state": "SUCCESS", "attempt": 1, "started_at": pytest.approx(t0),
        "finished_at": pytest.approx(t0 + 2.5), "failure": None}
    charge = tasks["charge"]
    assert (charge["state"], charge["attempt"], charge["finished_at"]) == ("RUNNING", 2, None)
    assert charge["started_at"] == pytest.approx(t0 + 30)
    assert (tasks["ship"]["state"], tasks["ship"]["attempt"], tasks["ship"]["started_at"]) == (
        "PENDING", 0, None)
    assert [(o["epoch"], o["owner"]) for o in run["owners"]] == [(3, "c1@h:1"), (7, "c2@h:2")]
    assert run["owners"][0]["taken_at"] <= run["owners"][1]["taken_at"]

    text = cli("show", job)
    assert "claimed:   by c2 since" in text
    assert "execution: RUNNING" in text and "epoch=7" in text and "owner=c2@h:2" in text
    lines = text.splitlines()
    header = lines.index(next(line for line in lines if line.startswith("TASK")))
    assert lines[header].split() == ["TASK", "STATE", "ATTEMPT", "STARTED", "TOOK", "ERROR"]
    fetch, charge_row, ship = (lines[header + i].split() for i in (1, 2, 3))
    assert fetch[:3] == ["fetch", "SUCCESS", "1"] and fetch[4:] == ["2.5s", "-"]
    assert charge_row[:3] == ["charge", "RUNNING", "2"] and charge_row[4:] == ["-", "-"]
    assert ship == ["ship", "PENDING", "0", "-", "-", "-"]
    owners = lines.index(next(line for line in lines if line.startswith("EPOCH")))
    assert [lines[owners + i].split()[:2] for i in (1, 2)] == [["3", "c1@h:1"], ["7", "c2@h:2"]]


# -- run and serve with --json -----------------------------------------------------------------

class Lines:
    """The lines a child process writes, read by a thread; `next` waits with a deadline."""

    def __init__(self, stream: IO[str]) -> None:
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self._lines.put(line)
        self._lines.put(None)

    def next(self, timeout: float) -> str | None:
        """The next line, or None at end of stream; raises queue.Empty after `timeout`."""
        return self._lines.get(timeout=timeout)


def start_json_daemon(argv: list[str]) -> tuple[subprocess.Popen[str], Lines, Lines]:
    process = subprocess.Popen(
        [sys.executable, "-m", "conductor.cli.main", *argv, "--json"], text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env_without_config())
    assert process.stdout is not None and process.stderr is not None
    return process, Lines(process.stdout), Lines(process.stderr)


def stop_daemon(process: subprocess.Popen[str]) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait(timeout=10)


def read_event(lines: Lines, errors: Lines, timeout: float = 60.0) -> dict[str, Any]:
    try:
        line = lines.next(timeout)
    except queue.Empty:
        line = None
    if line is None:
        logs = []
        while True:
            try:
                logged = errors.next(0.5)
            except queue.Empty:
                break
            if logged is None:
                break
            logs.append(logged)
        raise AssertionError("no JSON line on stdout; stderr:\n" + "".join(logs))
    event: dict[str, Any] = json.loads(line)
    return event


def test_run_with_json_says_when_ready_and_when_stopped(
        zk_server: ZooKeeperServers, zk_root: str, migrated_sqlite_url: str,
        board: JobBoard) -> None:
    process, out, err = start_json_daemon([
        "run", "--name", "json-1", "--zk", zk_server.connect_string, "--root", zk_root,
        "--db", migrated_sqlite_url, "--flows", "conductor.demo", "--http", "127.0.0.1:0",
        "--session-timeout", "2"])
    try:
        ready = read_event(out, err)
        # ready means registered: the conductor is on the board when the line arrives
        assert [m["id"] for m in board.members("conductors")] == ["json-1"]
        assert (ready["event"], ready["name"], ready["pid"]) == ("ready", "json-1", process.pid)
        assert (ready["zk"], ready["root"], ready["db"]) == (
            zk_server.connect_string, zk_root, migrated_sqlite_url)
        assert "demo.steps" in ready["flows"]
        host, _, port = ready["http"].removeprefix("http://").rpartition(":")
        assert host == "127.0.0.1" and int(port) > 0
        socket.create_connection((host, int(port)), timeout=10).close()
        assert ready["callbacks"] == ready["http"]
    finally:
        status = stop_daemon(process)
    stopped = read_event(out, err)
    assert status == 0
    assert (stopped["event"], stopped["name"], stopped["status"]) == ("stopped", "json-1", 0)
    assert stopped["finished"]["COMPLETED"] == 0
    assert out.next(10) is None  # nothing else on stdout


def test_serve_with_json_says_where_it_listens_and_when_stopped(
        zk_server: ZooKeeperServers, zk_root: str, migrated_sqlite_url: str) -> None:
    process, out, err = start_json_daemon([
        "serve", "--zk", zk_server.connect_string, "--root", zk_root,
        "--db", migrated_sqlite_url, "--http", "127.0.0.1:0"])
    try:
        ready = read_event(out, err)
        assert (ready["event"], ready["pid"], ready["root"]) == ("ready", process.pid, zk_root)
        host, _, port = ready["http"].removeprefix("http://").rpartition(":")
        socket.create_connection((host, int(port)), timeout=10).close()
    finally:
        status = stop_daemon(process)
    assert status == 0
    assert read_event(out, err) == {"event": "stopped", "pid": process.pid,
                                    "signal": "SIGTERM", "status": 0}
    assert out.next(10) is None


def test_run_with_json_reports_an_error_before_serving_as_json(
        zk_server: ZooKeeperServers, zk_root: str, migrated_sqlite_url: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "conductor.cli.main", "run", "--zk", zk_server.connect_string,
         "--root", zk_root, "--db", migrated_sqlite_url, "--json"],
        check=False, capture_output=True, text=True, timeout=60, env=env_without_config())
    assert result.returncode == 1 and result.stdout == ""
    error = json.loads(result.stderr.splitlines()[-1])
    assert error["kind"] == "failed" and "no flows to run" in error["error"]


def test_an_open_board_is_refused_with_credentials_until_repair_acls(
        cli: Any, board: JobBoard, monkeypatch: pytest.MonkeyPatch) -> None:
    board.post("before-auth", "f", {})  # the root and its folders exist, open to anyone
    monkeypatch.setenv("CONDUCTOR_ZK_AUTH", "ops:s3cret-pw")
    cli("status", expect=1)
    assert "--repair-acls" in cli.err and "s3cret-pw" not in cli.err
    cli("status", "--repair-acls")
    cli("status")  # repaired once: the board's ACL is now on every folder
    assert "s3cret-pw" not in cli.err
