"""Delegation end to end with real `conductor` processes: complete from the CLI, over HTTP
(served by `conductor run --http` and by `conductor serve`), a deadline expiring with a retry,
`conductor cancel` of a parked job, the conductor killed while completing, and PostgreSQL."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from typing import Any

import pytest

from conductor.testing import wait_until
from persistence import AtomState
from tests.delegation.conftest import DEADLINE, Rig

SECRET = "e2e-secret"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cli(rig: Rig, *args: str, stdin: str | None = None, db: bool = True, **env: str
        ) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "conductor.cli.main", *args, "--zk", rig.zk,
               "--root", rig.root, *(("--db", rig.db) if db else ())]
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CONDUCTOR_")}
    return subprocess.run(command, input=stdin, capture_output=True, text=True,
                          timeout=DEADLINE, check=False, env={**environment, **env})


def post_json(url: str, body: Any, secret: str | None = SECRET) -> tuple[int, dict[str, Any]]:
    headers = {"Content-Type": "application/json"}
    if secret:
        headers["Authorization"] = f"Bearer {secret}"
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers,
                                     method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/v1/health", timeout=5) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, ConnectionError):
        return False


def test_complete_from_the_cli(rig: Rig) -> None:
    rig.process("c1")
    approved, rejected = rig.post_approval(), rig.post_approval()
    token = rig.token(approved)
    rig.wait_parked(approved)
    done = cli(rig, "complete", token, "--result", '{"approved": true}')
    assert done.returncode == 0, done.stderr
    assert f"of job {approved}" in done.stdout and "job woken" in done.stdout
    assert token not in done.stdout + done.stderr
    outcome = rig.outcome(approved).outcome
    assert outcome is not None and outcome["result"]["decision"] == {"approved": True}

    again = cli(rig, "complete", token, "--result", "1")
    assert again.returncode == 1 and "already completed" in again.stderr
    assert token not in again.stderr
    unknown = cli(rig, "complete", "zkc_" + "Z" * 43, "--result", "1")
    assert unknown.returncode == 1 and "no delegation has that token" in unknown.stderr
    bad = cli(rig, "complete", rig.token(rejected), "--result", "{oops")
    assert bad.returncode == 2 and "not valid JSON" in bad.stderr

    failed = cli(rig, "complete", "-", "--fail", "rejected by ana", "--json",
                 stdin=rig.token(rejected) + "\n")
    assert failed.returncode == 0, failed.stderr
    assert json.loads(failed.stdout)["outcome"] == "error"
    outcome = rig.outcome(rejected).outcome
    assert outcome is not None and outcome["state"] == "REVERTED"
    assert outcome["failure"]["type"] == "conductor.delegation.errors.DelegationFailed"
    assert outcome["failure"]["message"] == "rejected by ana"


def test_the_cli_reports_an_unreachable_zookeeper_with_exit_status_3(rig: Rig) -> None:
    command = [sys.executable, "-m", "conductor.cli.main", "complete", "zkc_" + "Y" * 43,
               "--result", "1", "--zk", f"127.0.0.1:{free_port()}", "--connect-timeout", "1",
               "--root", rig.root, "--db", rig.db]
    done = subprocess.run(command, capture_output=True, text=True, timeout=DEADLINE,
                          check=False)
    assert done.returncode == 3, done.stderr


def test_complete_over_http_served_by_the_conductor(rig: Rig) -> None:
    port = free_port()
    rig.process("web", extra_args=("--http", f"127.0.0.1:{port}"),
                env={"CONDUCTOR_HTTP_SECRET": SECRET})
    job = rig.post_approval()
    token = rig.token(job)
    url = rig.entries(job)[0]["url"]
    assert url == f"http://127.0.0.1:{port}/v1/callbacks/{token}"
    rig.wait_parked(job)
    assert post_json(url, {"result": "yes"}, secret=None)[0] == 401
    status, body = post_json(url, {"result": "yes"})
    assert status == 200 and body["job_state"] == "woken", body
    outcome = rig.outcome(job).outcome
    assert outcome is not None and outcome["result"]["decision"] == "yes"
    assert post_json(url, {"result": "again"})[0] == 409
    assert token not in rig.processes[0].log_tail(500)


def test_conductor_serve_is_the_endpoint_on_its_own(rig: Rig) -> None:
    rig.process("worker")
    port = free_port()
    log = open(rig.dir / "serve.log", "wb")  # noqa: SIM115 (closed below)
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CONDUCTOR_")}
    serve = subprocess.Popen(
        [sys.executable, "-m", "conductor.cli.main", "serve", "--http", f"127.0.0.1:{port}",
         "--zk", rig.zk, "--root", rig.root, "--db", rig.db],
        stdout=log, stderr=subprocess.STDOUT, env={**environment,
                                                   "CONDUCTOR_HTTP_SECRET": SECRET})
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until(lambda: healthy(base), DEADLINE, "conductor serve to answer")
        job = rig.post_approval()
        token = rig.token(job)
        rig.wait_parked(job)
        status, body = post_json(f"{base}/v1/callbacks/{token}", {"result": 7})
        assert status == 200, body
        outcome = rig.outcome(job).outcome
        assert outcome is not None and outcome["result"]["decision"] == 7
        serve.send_signal(signal.SIGTERM)
        assert serve.wait(30) == 0
    finally:
        if serve.poll() is None:
            serve.kill()
            serve.wait(30)
        log.close()
    assert token not in (rig.dir / "serve.log").read_text()


def test_a_deadline_expires_and_the_old_token_still_completes_the_retried_task(
        rig: Rig) -> None:
    rig.process("c1")
    job = rig.post_approval(timeout=1.0, retries=20)
    first = rig.token(job, attempt=1)
    second = rig.token(job, attempt=2)  # attempt 1 timed out: the keeper woke the job
    done = cli(rig, "complete", first, "--result", '"from the first request"')
    assert done.returncode == 0, done.stderr
    outcome = rig.outcome(job).outcome
    assert outcome is not None and outcome["state"] == "SUCCESS", rig.logs()
    assert outcome["result"]["decision"] == "from the first request"
    late = cli(rig, "complete", second, "--result", '"second"')
    assert late.returncode == 1 and "already has an outcome" in late.stderr
    execution = rig.store.find_by_job(job)
    assert execution is not None and execution.atoms["request"].state is AtomState.SUCCESS
    assert execution.atoms["request"].attempt >= 2


def test_conductor_cancel_of_a_parked_job_reverts_it_promptly_and_its_token_gets_409(
        rig: Rig) -> None:
    """No deadline: before, the woken job parked again and waited for ever."""
    port = free_port()
    rig.process("c1", extra_args=("--http", f"127.0.0.1:{port}"),
                env={"CONDUCTOR_HTTP_SECRET": SECRET})
    job = rig.post_approval()  # no "timeout": the delegation has no deadline
    token = rig.token(job)
    rig.wait_parked(job)
    cancelled = cli(rig, "cancel", job, db=False)  # a board command: no database
    assert cancelled.returncode == 0, cancelled.stderr
    outcome = rig.board.wait(job, 30).outcome
    assert outcome is not None and outcome["state"] == "REVERTED", rig.logs()
    assert outcome["failure"]["type"] == "conductor.flow.errors.Cancelled"
    execution = rig.store.find_by_job(job)
    assert execution is not None and execution.atoms["request"].state is AtomState.REVERTED
    assert execution.atoms["apply"].state is AtomState.IGNORED
    status, body = post_json(rig.entries(job)[0]["url"], {"result": "approved, too late"})
    assert status == 409 and body["kind"] == "TaskFinished", body
    assert "already has an outcome" in body["error"] and "cancelled" in body["error"]
    late = cli(rig, "complete", token, "--result", '"approved"')
    assert late.returncode == 1 and "already has an outcome" in late.stderr


def test_a_conductor_killed_while_completing_loses_nothing(rig: Rig) -> None:
    port = free_port()
    doomed = rig.process("doomed", flows=("conductor.demo", "tests.delegation.killpoint"),
                         extra_args=("--http", f"127.0.0.1:{port}"),
                         env={"CONDUCTOR_HTTP_SECRET": SECRET})
    rig.process("survivor")
    job = rig.post_approval()
    token = rig.token(job)
    rig.wait_parked(job)
    with pytest.raises((ConnectionError, urllib.error.URLError)):
        post_json(f"http://127.0.0.1:{port}/v1/callbacks/{token}", {"result": "kept"})
    assert doomed.wait(30) == -signal.SIGKILL
    outcome = rig.outcome(job).outcome
    assert outcome is not None and outcome["state"] == "SUCCESS", rig.logs()
    assert outcome["result"]["decision"] == "kept"


@pytest.mark.postgres
def test_delegation_on_postgresql(pg_rig: Rig) -> None:
    pg_rig.process("pg")
    job = pg_rig.post_approval()
    token = pg_rig.token(job)
    pg_rig.wait_parked(job)
    done = cli(pg_rig, "complete", token, "--result", '{"db": "postgresql"}')
    assert done.returncode == 0, done.stderr
    outcome = pg_rig.outcome(job).outcome
    assert outcome is not None and outcome["result"]["decision"] == {"db": "postgresql"}
    assert cli(pg_rig, "complete", token, "--result", "1").returncode == 1
