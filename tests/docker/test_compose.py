"""docker/: checked statically (no Docker engine runs here), and its topology run for real as
local processes: a 3-server ZooKeeper ensemble, PostgreSQL, the migration, two conductors."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from conductor.cli.main import build_parser
from conductor.config import load_settings
from conductor.registry import Registry
from jobboard.board import JobBoard
from jobboard.model import JobState
from jobboard.testing.nodes import wait_for_node
from jobboard.testing.zkserver import ZooKeeperServers

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker" / "docker-compose.yml"
DOCKERFILE = REPO / "docker" / "Dockerfile"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def conductor_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: svc for name, svc in compose["services"].items() if "build" in svc}


def test_the_dockerfile_copies_what_exists_and_runs_the_cli() -> None:
    text = DOCKERFILE.read_text()
    base = re.search(r"^FROM python:(\d+)\.(\d+)", text, re.M)
    assert base and (int(base.group(1)), int(base.group(2))) >= (3, 10)
    for source in re.findall(r"^COPY (\S+) ", text, re.M):
        assert (REPO / source).exists(), f"COPY {source}: not in the repository"
    assert "'.[postgres]'" in text, "the image needs the PostgreSQL driver"
    assert re.search(r'^ENTRYPOINT \["conductor"\]', text, re.M)
    assert re.search(r"^USER conductor", text, re.M), "do not run as root"


def test_every_conductor_service_has_valid_settings_and_commands(
        compose: dict[str, Any]) -> None:
    services = conductor_services(compose)
    assert {"migrate", "conductor-a", "conductor-b"} <= set(services)
    parser = build_parser()
    for name, service in services.items():
        env = {k: str(v) for k, v in service["environment"].items()}
        settings = load_settings({}, env=env)  # unknown or ill-typed settings raise
        assert settings.db.startswith("postgresql+psycopg://"), name
        args = parser.parse_args(service["command"])
        assert args.handler is not None, name
        if service["command"][0] == "run":
            assert service["depends_on"]["migrate"]["condition"] == \
                "service_completed_successfully"
            assert service.get("stop_signal") == "SIGTERM"
            Registry.from_specs(settings.flows)  # the flows it names load
    names = [svc["command"][svc["command"].index("--name") + 1]
             for svc in services.values() if svc["command"][0] == "run"]
    assert len(names) == len(set(names)), "conductor names must be unique"


def test_the_ensemble_is_three_servers_the_conductors_all_know(compose: dict[str, Any]) -> None:
    zk = {name: svc for name, svc in compose["services"].items() if name.startswith("zk")}
    assert len(zk) == 3
    ids = sorted(int(svc["environment"]["ZOO_MY_ID"]) for svc in zk.values())
    assert ids == [1, 2, 3]
    for svc in zk.values():
        servers = svc["environment"]["ZOO_SERVERS"].split()
        assert sorted(s.split("=")[0] for s in servers) == ["server.1", "server.2", "server.3"]
    for service in conductor_services(compose).values():
        hosts = sorted(h.split(":")[0] for h in service["environment"]["CONDUCTOR_ZK"].split(","))
        assert hosts == sorted(zk)


def _rewrite_env(env: dict[str, Any], zk: str, db: str) -> dict[str, str]:
    local = {k: str(v) for k, v in env.items()}
    local["CONDUCTOR_ZK"] = zk
    local["CONDUCTOR_DB"] = db
    return local


@pytest.fixture
def ensemble() -> Iterator[ZooKeeperServers]:
    with ZooKeeperServers(3, tick_time_ms=200) as servers:
        yield servers


@pytest.mark.slow
@pytest.mark.postgres
def test_the_compose_topology_runs_as_local_processes(
        compose: dict[str, Any], ensemble: ZooKeeperServers, postgres_url: str,
        tmp_path: Path) -> None:
    services = conductor_services(compose)
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("CONDUCTOR_")}
    cli = [sys.executable, "-m", "conductor.cli.main"]

    def env_of(name: str) -> dict[str, str]:
        return {**base_env, **_rewrite_env(services[name]["environment"],
                                           ensemble.connect_string, postgres_url)}

    migrate = subprocess.run([*cli, *services["migrate"]["command"]], env=env_of("migrate"),
                             check=False, capture_output=True, text=True, timeout=120)
    assert migrate.returncode == 0, migrate.stderr
    root = services["conductor-a"]["environment"]["CONDUCTOR_ROOT"]
    board = JobBoard.connect(ensemble.connect_string, root, session_timeout=10)
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for name in ("conductor-a", "conductor-b"):
            with open(tmp_path / f"{name}.log", "wb") as log:
                processes.append(subprocess.Popen(
                    [*cli, *services[name]["command"]], env=env_of(name), stdout=log,
                    stderr=subprocess.STDOUT))
            member = services[name]["command"][services[name]["command"].index("--name") + 1]
            wait_for_node(board.client, f"{root}/conductors/{member}", 60)
        ledger = tmp_path / "ledger.jsonl"
        jobs = [board.post(f"j{i}", "demo.steps", {"steps": 3, "seconds": 0.1,
                                                   "ledger": str(ledger)}).id
                for i in range(10)]
        leader = ensemble.leader()
        assert leader is not None
        ensemble.kill(leader)  # the leader dies mid-run; the ensemble elects another
        for job in jobs:
            outcome = board.wait(job, 120)
            assert outcome.state is JobState.COMPLETED, outcome
            assert outcome.outcome is not None and outcome.outcome["state"] == "SUCCESS"
        for process in processes:  # docker stop: SIGTERM, then a clean exit
            process.send_signal(signal.SIGTERM)
        assert [p.wait(60) for p in processes] == [0, 0]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait(30)
        board.close()
