"""The session lease: `lease.alive` is never true for a session the server may have expired.

The scenario it exists for: a process stopped past its session timeout resumes still believing
it is connected. Its lease ran out while it was stopped, so it does not act on a lost claim.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from conductor.testing import wait_until
from jobboard.testing.nodes import wait_for_node
from jobboard.testing.zkserver import ZooKeeperServers
from jobboard.zk import lease
from jobboard.zk.connect import connect

SESSION_TIMEOUT = 1.0
CHILD = Path(__file__).with_name("lease_child.py")


def test_a_connected_client_holds_a_lease_that_requests_and_pings_renew(
        zk_server: ZooKeeperServers) -> None:
    client = connect(zk_server.connect_string, session_timeout=SESSION_TIMEOUT)
    try:
        wait_until(lambda: lease.alive(client), 5, "the first acknowledged send")
        # Idle for several session timeouts: kazoo's pings alone keep the lease alive.
        deadline = time.monotonic() + 3 * SESSION_TIMEOUT
        while time.monotonic() < deadline:
            assert lease.alive(client)
            time.sleep(0.01)
    finally:
        client.stop()
        client.close()
    assert not lease.alive(client)


def test_a_process_stopped_past_its_session_timeout_resumes_without_a_lease(
        zk_server: ZooKeeperServers, zk_root: str) -> None:
    watcher = connect(zk_server.connect_string, session_timeout=10)
    marker = f"{zk_root}/marker"
    lines: list[dict[str, Any]] = []
    child = subprocess.Popen(
        [sys.executable, str(CHILD), zk_server.connect_string, marker, str(SESSION_TIMEOUT)],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": os.getcwd()})
    reader = threading.Thread(
        target=lambda: [lines.append(json.loads(line)) for line in child.stdout or ()],
        daemon=True)
    reader.start()
    try:
        wait_until(lambda: any(line["alive"] for line in lines), 30, "the child's lease")
        old_session = next(line["session"] for line in lines if line["alive"])
        os.kill(child.pid, signal.SIGSTOP)
        wait_for_node(watcher, marker, 10 * SESSION_TIMEOUT, gone=True)  # server expired it
        resumed = time.monotonic()
        os.kill(child.pid, signal.SIGCONT)
        wait_until(lambda: any(line["before"] > resumed and line["alive"] for line in lines),
                   30, "a new session with a lease after the resume")
        after_resume = [line for line in lines if line["before"] > resumed]
        stale = [line for line in after_resume
                 if line["alive"] and line["session"] == old_session]
        assert not stale, f"alive with the expired session after resume: {stale[:3]}"
        assert any(line["session"] != old_session for line in after_resume if line["alive"])
    finally:
        child.kill()
        child.wait(10)
        watcher.stop()
        watcher.close()
