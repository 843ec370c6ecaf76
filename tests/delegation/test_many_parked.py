"""1,000 parked jobs: the conductors go idle (no ZooKeeper request at all beyond pings while
the jobs wait), then every completion drains through them. Speed figures: bench/parked.py."""

from __future__ import annotations

import concurrent.futures
import threading
import time

import pytest

from conductor.ledger import read_ledger
from conductor.testing import wait_until
from tests.delegation.conftest import Rig
from tests.delegation.zkcount import requests_between

JOBS = 1000
PATIENCE = 600.0


@pytest.mark.slow
def test_a_thousand_parked_jobs_leave_the_conductors_idle_then_drain(rig: Rig) -> None:
    log = rig.dir / "requests.log"
    for name in ("a", "b"):
        rig.process(name, max_jobs=8, session_timeout=6.0,
                    flows=("conductor.demo", "tests.delegation.zkcount"),
                    env={"ZKC_REQUEST_LOG": str(log)})
    jobs = [rig.post_approval() for _ in range(JOBS)]
    parked = f"{rig.root}/parked"
    wait_until(lambda: len(rig.board.client.get_children(parked)) == JOBS, PATIENCE,
               f"{JOBS} jobs to park")
    # Settled: the keeper has read every parked deadline and nothing else is going on.
    wait_until(lambda: not requests_between(str(log), time.time() - 1.0, time.time()),
               PATIENCE, "the conductors to go quiet")
    start = time.time()
    threading.Event().wait(3.0)  # an observation window (two ping intervals), not a wait
    assert requests_between(str(log), start, time.time()) == []
    assert all(process.alive for process in rig.processes)

    tokens = {e["job"]: e["token"] for e in read_ledger(rig.ledger) if e["task"] == "request"}
    assert set(tokens) == set(jobs)
    callbacks = rig.callbacks()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        reports = list(pool.map(lambda job: callbacks.complete(tokens[job], result=job), jobs))
    assert all(report.job in ("woken", "notified") for report in reports)
    outcomes = f"{rig.root}/outcomes"
    wait_until(lambda: len(rig.board.client.get_children(outcomes)) == JOBS, PATIENCE,
               "every job to complete")
    for job in jobs[:: JOBS // 20]:
        outcome = rig.board.wait(job, 10).outcome
        assert outcome is not None and outcome["result"]["decision"] == job
    assert rig.board.client.get_children(parked) == []
