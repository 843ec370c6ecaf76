"""Parked jobs cost nothing, and completions drain them fast.

One run on a local ZooKeeper and a SQLite file, printing `name: value` lines:
- idle_*_parked_1000: a conductor holding no claim while 1,000 jobs it parked wait on their
  delegations (it is also the elected deadline keeper of that board), over a 10 s window:
  process CPU (% of one core), ZooKeeper requests/s it sent (counted in the process: every
  request through kazoo's `_call`), and packets/s the server received from its session
  (`cons`; requests + pings);
- the same for the same conductor on an empty board: the reference (pings only);
- park_jobs_per_s: 1,000 `demo.approval` jobs run to their delegation and parked;
- drain_jobs_per_s: 1,000 completions through the Python API (8 threads) until every job has
  its outcome, beside plain_drain_jobs_per_s: 1,000 one-step `demo.steps` jobs drained by the
  same kind of conductor (the ceiling: the same claim/run/complete without a delegation).

Run it as `.venv/bin/python -P bench/parked.py` (or as below: the path guard drops bench/ from
sys.path, where bench/persistence.py would shadow the `persistence` package).
"""

from __future__ import annotations

import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]
_REPO = os.path.dirname(_HERE)
if _REPO not in sys.path:
    sys.path.insert(0, _REPO)

import concurrent.futures  # noqa: E402
import re  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import psutil  # noqa: E402

from conductor.delegation import Callbacks  # noqa: E402
from conductor.ledger import read_ledger  # noqa: E402
from conductor.testing import ConductorProcess, wait_until  # noqa: E402
from jobboard.board import JobBoard  # noqa: E402
from jobboard.testing.zkserver import ZooKeeperServers, four_letter_word  # noqa: E402
from persistence import migrate, open_store  # noqa: E402

JOBS = 1000
WINDOW = 10.0
SESSION_TIMEOUT = 10.0
PATIENCE = 900.0

COUNTER = '''
import os, time
from kazoo.client import KazooClient
_path, _original = os.environ["ZKC_REQUEST_LOG"], KazooClient._call
def _call(self, request, async_object):
    fd = os.open(_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{time.time():.6f} {type(request).__name__}\\n".encode())
    finally:
        os.close(fd)
    return _original(self, request, async_object)
KazooClient._call = _call
'''


def show(name: str, value: float | str, reference: str = "") -> None:
    text = f"{value:.3f}" if isinstance(value, float) else str(value)
    print(f"{name}: {text}" + (f"  ({reference})" if reference else ""), flush=True)


def requests_in(log: Path, start: float, end: float) -> int:
    try:
        lines = log.read_text().splitlines()
    except FileNotFoundError:
        return 0
    return sum(1 for line in lines if line and start <= float(line.split()[0]) < end)


def received(servers: ZooKeeperServers, session: str) -> int:
    pattern = re.compile(r"recved=(\d+),.*sid=0x([0-9a-f]+)")
    for line in four_letter_word(servers.ports[0].client, "cons").splitlines():
        match = pattern.search(line)
        if match and int(match.group(2), 16) == int(session, 16):
            return int(match.group(1))
    raise RuntimeError(f"session {session} not found in cons")


class Watched:
    """A conductor process with its request log, its session and its CPU counters."""

    def __init__(self, name: str, root: str, servers: ZooKeeperServers, db: str, work: Path,
                 board: JobBoard, max_jobs: int = 8) -> None:
        self.log = work / f"{name}-requests.log"
        counter = work / "zkcount_bench.py"
        counter.write_text(COUNTER)
        self.process = ConductorProcess(
            name, zk=servers.connect_string, root=root, db=db, log_dir=work,
            flows=("conductor.demo", str(counter)), max_jobs=max_jobs,
            session_timeout=SESSION_TIMEOUT, env={"ZKC_REQUEST_LOG": str(self.log)}).start()
        self.process.wait_registered(board)
        member = next(m for m in board.members("conductors") if m["id"] == name)
        self.session = str(member["session"])
        self.psutil = psutil.Process(self.process.pid)

    def cpu(self) -> float:
        times = self.psutil.cpu_times()
        return float(times.user + times.system)


def quiet(watched: list[Watched]) -> None:
    """Wait until none of them sent a request for a second (startup and parking are over)."""
    def silent() -> bool:
        now = time.time()
        return all(requests_in(w.log, now - 1.0, now) == 0 for w in watched)
    wait_until(silent, PATIENCE, "the conductors to go quiet", interval=0.2)


def idle_window(servers: ZooKeeperServers, watched: list[Watched]
                ) -> list[tuple[float, float, float]]:
    """(CPU %, requests/s, server-received packets/s) of each over WINDOW seconds."""
    before = [(w.cpu(), received(servers, w.session)) for w in watched]
    start = time.time()
    time.sleep(WINDOW)  # the observation window itself
    end = time.time()
    figures = []
    for w, (cpu, packets) in zip(watched, before, strict=True):
        span = end - start
        figures.append(((w.cpu() - cpu) / span * 100, requests_in(w.log, start, end) / span,
                        (received(servers, w.session) - packets) / span))
    return figures


def main() -> int:
    with ZooKeeperServers(1) as servers, tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        db = f"sqlite:///{work / 'parked.db'}"
        migrate.upgrade(db)
        hosts = servers.connect_string
        ledger = work / "ledger.jsonl"
        with JobBoard.connect(hosts, "/parked") as board, \
                JobBoard.connect(hosts, "/empty") as empty_board, \
                JobBoard.connect(hosts, "/plain") as plain_board, open_store(db) as store:
            reference = Watched("reference", "/empty", servers, db, work, empty_board)
            idle = Watched("idle", "/parked", servers, db, work, board)
            began = time.monotonic()
            jobs = [board.post("approval", "demo.approval", {"ledger": str(ledger)}).id
                    for _ in range(JOBS)]
            wait_until(lambda: len(board.client.get_children("/parked/parked")) == JOBS,
                       PATIENCE, "every job to park", interval=0.1)
            show("park_jobs_per_s", JOBS / (time.monotonic() - began),
                 "post, claim, run to the delegation, park")
            quiet([reference, idle])
            (ref_cpu, ref_req, ref_pkt), (cpu, req, pkt) = idle_window(servers,
                                                                       [reference, idle])
            show("idle_cpu_percent_parked_1000", cpu, f"reference empty board {ref_cpu:.3f}")
            show("idle_cpu_percent_empty_board", ref_cpu, "reference")
            show("idle_zk_requests_per_s_parked_1000", req, "target 0 beyond pings")
            show("idle_zk_requests_per_s_empty_board", ref_req, "reference")
            show("idle_zk_packets_per_s_parked_1000", pkt, "requests + pings, server side")
            show("idle_zk_packets_per_s_empty_board", ref_pkt, "pings only: reference")

            tokens = {e["job"]: e["token"] for e in read_ledger(ledger)
                      if e["task"] == "request"}
            callbacks = Callbacks(store, board)
            began = time.monotonic()
            with concurrent.futures.ThreadPoolExecutor(8) as pool:
                list(pool.map(lambda job: callbacks.complete(tokens[job], result=job), jobs))
            recorded = time.monotonic() - began
            wait_until(lambda: len(board.client.get_children("/parked/outcomes")) == JOBS,
                       PATIENCE, "every job to complete", interval=0.05)
            drained = time.monotonic() - began
            show("completions_recorded_per_s", JOBS / recorded, "Python API, 8 threads")

            for i in range(JOBS):
                plain_board.post(f"plain-{i}", "demo.steps",
                                 {"steps": 1, "seconds": 0.0, "ledger": str(work / "plain")})
            began = time.monotonic()
            plain = Watched("plain", "/plain", servers, db, work, plain_board)
            wait_until(lambda: len(plain_board.client.get_children("/plain/outcomes")) == JOBS,
                       PATIENCE, "every plain job to complete", interval=0.05)
            plain_rate = JOBS / (time.monotonic() - began)
            show("drain_jobs_per_s", JOBS / drained,
                 f"completion to outcome; ceiling plain {plain_rate:.1f}")
            show("plain_drain_jobs_per_s", plain_rate,
                 "1-step demo.steps, same conductor settings (incl. its start)")
            for watched in (reference, idle, plain):
                watched.process.terminate()
    return 0


if __name__ == "__main__":
    sys.exit(main())
