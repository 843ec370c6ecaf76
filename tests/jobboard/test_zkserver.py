"""The ZooKeeper launcher: standalone and ensemble start, chaos controls, clear errors."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest
from kazoo.client import KazooClient

from jobboard.testing.zkserver import (
    ZooKeeperLaunchError,
    ZooKeeperServers,
    find_classpath,
    find_java,
    four_letter_word,
)
from tests.fixtures.zookeeper import ZkClientFactory

T = TypeVar("T")


def wait_until(predicate: Callable[[], T], timeout: float = 30.0, what: str = "condition") -> T:
    """Poll an external process state (a server's mode) until true, with a deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_standalone_serves_clients_and_is_its_own_leader(
    zk_server: ZooKeeperServers, zk_client_factory: ZkClientFactory, zk_root: str
) -> None:
    client = zk_client_factory()
    client.create(zk_root + "/a", b"x", makepath=True)
    assert client.get(zk_root + "/a")[0] == b"x"
    assert zk_server.leader() == 0
    assert zk_server.mode(0) == "standalone"
    assert four_letter_word(zk_server.ports[0].client, "ruok") == "imok"


def test_one_and_ten_second_sessions_are_negotiated_as_asked(
    zk_server: ZooKeeperServers, zk_client_factory: ZkClientFactory
) -> None:
    zk_client_factory(timeout=1.0)
    zk_client_factory(timeout=10.0)
    connections = four_letter_word(zk_server.ports[0].client, "cons")
    assert "to=1000," in connections
    assert "to=10000," in connections


def test_isolated_server_pause_resume_restart(
    zk_isolated_server: ZooKeeperServers, zk_client_factory: ZkClientFactory
) -> None:
    servers = zk_isolated_server
    client = zk_client_factory(hosts=servers.connect_string)
    client.create("/kept", b"1")
    servers.pause(0)
    assert servers.mode(0) is None
    servers.resume(0)
    wait_until(lambda: servers.mode(0) == "standalone", what="resumed server")
    old_pid = servers.pid(0)
    servers.restart(0)
    assert servers.pid(0) not in (None, old_pid)
    fresh = zk_client_factory(hosts=servers.connect_string)
    assert fresh.get("/kept")[0] == b"1"


@pytest.mark.chaos
def test_ensemble_elects_a_new_leader_after_sigkill(
    zk_ensemble: ZooKeeperServers, zk_client_factory: ZkClientFactory
) -> None:
    servers = zk_ensemble
    leader = servers.leader()
    assert leader in (0, 1, 2)
    assert sorted(m or "" for m in (servers.mode(i) for i in range(3))).count("follower") == 2
    client = zk_client_factory(hosts=servers.connect_string)
    client.create("/survives", b"1")
    servers.kill(leader)
    assert servers.pid(leader) is None
    new_leader = wait_until(servers.leader, what="a new leader")
    assert new_leader != leader
    assert client.retry(client.get, "/survives")[0] == b"1"
    servers.restart(leader)
    assert servers.mode(leader) == "follower"


def test_missing_jars_error_names_the_package_and_env_var(tmp_path: Path) -> None:
    with pytest.raises(ZooKeeperLaunchError) as info:
        find_classpath(env={}, debian_jar=str(tmp_path / "absent.jar"))
    assert "zookeeper" in str(info.value) and "ZOOKEEPER_CLASSPATH" in str(info.value)
    assert find_classpath(env={"ZOOKEEPER_CLASSPATH": "/x/y.jar"}) == "/x/y.jar"


def test_missing_java_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ZooKeeperLaunchError, match="java"):
        find_java(path=str(tmp_path))


def test_server_that_cannot_start_reports_its_log(tmp_path: Path) -> None:
    servers = ZooKeeperServers(1, classpath=str(tmp_path / "nothing.jar"), start_timeout=30)
    with pytest.raises(ZooKeeperLaunchError, match="exited before becoming ready"):
        servers.start()
    assert servers.pid(0) is None


def test_developer_entry_point_prints_connect_string_and_stops_on_sigterm() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "jobboard.testing.zkserver"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        connect_string = proc.stdout.readline().strip()
        assert connect_string.startswith("127.0.0.1:")
        client = KazooClient(hosts=connect_string)
        client.start(timeout=30)
        client.stop()
        client.close()
    finally:
        proc.terminate()
        assert proc.wait(timeout=30) == 0
