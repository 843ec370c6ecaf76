"""Job board costs beside the ZooKeeper ceiling, on one local standalone server started here.

One run prints `name: value` lines (each target beside its reference and the ratio):

- raw_create_sync_per_s / raw_create_async_per_s: bare kazoo creates of a job-sized payload
  (the ceiling);
- post_per_s, post_vs_raw_sync (target >= 0.65); post_first_10pct_ms, post_last_10pct_ms and
  post_last_vs_first (target <= 1.2) over POSTS posts onto one board;
- claim_complete_1proc_per_s, claim_complete_4proc_per_s (claim_next + complete, separate
  processes draining a CLAIM_BACKLOG backlog) and their ratios to the raw sync create rate
  (target >= 0.33);
- next_job_ms_at_1000, next_job_ms_at_20000 (claim_next right after a complete, on watched
  backlogs, samples interleaved) and next_job_20000_vs_1000 (target <= 1.2);
  view_event_cpu_us_at_<n>: CPU an observer board spends per claim/complete event;
- idle_requests_per_s (target 0) and idle_pings_per_s: what an idle claimer watching a
  1,000-job board (10 of them claimed) sends, counted in kazoo and in the server's `cons`;
- resync_<n>_ok / resync_<n>_reply_bytes / resync_<n>_ms: one full getChildren of jobs/ at
  20,000 and 50,000 pending jobs (ZooKeeper clients other than kazoo refuse replies over
  jute.maxbuffer, 1 MiB by default).

Rates are medians of REPEATS rounds; each ratio is the median of per-round ratios, every
measured round following its own raw round (the machine may be shared: load drifts).

    .venv/bin/python bench/board.py
"""

from __future__ import annotations

import json
import re
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kazoo.client import KazooClient

from jobboard.board import JobBoard
from jobboard.protocol.documents import encode_job, new_job_document
from jobboard.protocol.naming import JobIdGenerator
from jobboard.testing.zkserver import ZooKeeperServers, four_letter_word

REPEATS = 5
RAW_CREATES = 2000
POSTS = 2000
CLAIM_BACKLOG = 600
NEXT_JOB_SAMPLES = 200
IDLE_SECONDS = 10.0
CONFLICTS: dict[int, int] = {}  # claim attempts lost to another claimer, by process count


def show(name: str, value: float | str, reference: str = "") -> None:
    text = f"{value:.3f}" if isinstance(value, float) else str(value)
    print(f"{name}: {text}" + (f"  ({reference})" if reference else ""), flush=True)


def median_ratio(values: list[float], references: list[float]) -> float:
    """Median over rounds of value/reference (each value measured right after its reference)."""
    return statistics.median(v / r for v, r in zip(values, references, strict=True))


def ratio(name: str, value: float, reference: float, target: str) -> None:
    show(name, value / reference if reference else float("nan"), target)


@contextmanager
def kazoo(hosts: str, timeout: float = 10.0) -> Iterator[KazooClient]:
    client = KazooClient(hosts=hosts, timeout=timeout)
    client.start(timeout=30)
    try:
        yield client
    finally:
        client.stop()
        client.close()


def payload() -> bytes:
    document = new_job_document(
        JobIdGenerator().new_id(0), name="bench", flow="bench.flow", inputs={"n": 1, "s": "x" * 40},
        priority=0, key=None,
    )
    return encode_job(document)


def raw_sync(hosts: str, data: bytes) -> float:
    with kazoo(hosts) as client:
        root = f"/raw-{uuid.uuid4().hex}"
        client.create(root)
        start = time.perf_counter()
        for i in range(RAW_CREATES):
            client.create(f"{root}/n{i}", data)
        return RAW_CREATES / (time.perf_counter() - start)


def raw_async(hosts: str, data: bytes) -> float:
    with kazoo(hosts) as client:
        root = f"/raw-{uuid.uuid4().hex}"
        client.create(root)
        start = time.perf_counter()
        results = [client.create_async(f"{root}/n{i}", data) for i in range(RAW_CREATES)]
        for result in results:
            result.get()
        return RAW_CREATES / (time.perf_counter() - start)


def posting(hosts: str) -> tuple[float, float, float]:
    """(posts/s, ms per post over the first 10 %, over the last 10 %)."""
    with JobBoard.connect(hosts, f"/post-{uuid.uuid4().hex}") as board:
        durations = []
        start = time.perf_counter()
        for i in range(POSTS):
            began = time.perf_counter()
            board.post("bench", "bench.flow", {"n": i, "s": "x" * 40})
            durations.append(time.perf_counter() - began)
        elapsed = time.perf_counter() - start
    tenth = POSTS // 10  # medians: a slice's mean is at the mercy of one scheduling hiccup
    first = statistics.median(durations[:tenth]) * 1000
    last = statistics.median(durations[-tenth:]) * 1000
    return POSTS / elapsed, first, last


def fill(client: KazooClient, root: str, count: int) -> None:
    """Put `count` valid jobs on a board quickly (setup, not measured)."""
    ids = JobIdGenerator()
    for batch in range(0, count, 2000):
        results = []
        for _ in range(min(2000, count - batch)):
            job_id = ids.new_id(batch % 7)
            document = new_job_document(
                job_id, name="bench", flow="bench.flow", inputs={"n": 1}, priority=batch % 7,
                key=None,
            )
            results.append(client.create_async(f"{root}/jobs/{job_id}", encode_job(document)))
        for result in results:
            result.get()


def claimer_main(hosts: str, root: str, owner: str) -> int:
    """Child process: watch, wait for 'go', drain the board, report timings as JSON."""
    with JobBoard.connect(hosts, root) as board:
        board.watch()
        print("ready", flush=True)
        sys.stdin.readline()
        started = time.time()
        done = 0
        last = started
        conflicts = 0
        claim_one = board._claims.claim

        def counting_claim(*args: Any, **kwargs: Any) -> Any:
            nonlocal conflicts
            try:
                return claim_one(*args, **kwargs)
            except Exception:
                conflicts += 1
                raise

        board._claims.claim = counting_claim  # type: ignore[method-assign]
        while (claim := board.claim_next(owner, timeout=1.0)) is not None:
            board.complete(claim, {"state": "SUCCESS"})
            done += 1
            last = time.time()
        report = {"done": done, "started": started, "last": last, "conflicts": conflicts}
        print(json.dumps(report), flush=True)
    return 0


def claim_complete(hosts: str, processes: int) -> float:
    root = f"/claim-{uuid.uuid4().hex}"
    with JobBoard.connect(hosts, root) as board:
        fill(board.client, root, CLAIM_BACKLOG)
    children = [
        subprocess.Popen(
            [sys.executable, __file__, "--claimer", hosts, root, f"c{i}"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in range(processes)
    ]
    try:
        for child in children:
            assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        for child in children:
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
        reports = []
        for child in children:
            assert child.stdout is not None
            reports.append(json.loads(child.stdout.readline()))
    finally:
        for child in children:
            if child.wait(timeout=60) != 0:
                raise RuntimeError("a claimer process failed")
    CONFLICTS[processes] = CONFLICTS.get(processes, 0) + sum(r["conflicts"] for r in reports)
    total = sum(report["done"] for report in reports)
    assert total == CLAIM_BACKLOG, reports
    span = max(r["last"] for r in reports) - min(r["started"] for r in reports)
    return total / span


def event_cpu_meter(board: JobBoard) -> Callable[[], tuple[int, float]]:
    """Wrap an observer board's watch handlers to count events and their CPU time."""
    watcher = board.watcher
    totals = {"events": 0, "cpu": 0.0}
    for name in ("_on_job_event", "_on_claim_event"):
        original = getattr(watcher, name)

        def timed(event: Any, original: Any = original) -> None:
            began = time.thread_time()
            original(event)
            totals["cpu"] += time.thread_time() - began
            totals["events"] += 1

        setattr(watcher, name, timed)
    # The watch registry holds the bound methods: re-point the watches at the wrappers.
    for watch, name in zip(watcher._watches, ("_on_job_event", "_on_claim_event"), strict=True):
        watch._on_event = getattr(watcher, name)
    return lambda: (int(totals["events"]), totals["cpu"])


class Backlog:
    """A watched board of `size` jobs, a claimer on it and an observer counting event CPU."""

    def __init__(self, hosts: str, size: int) -> None:
        self.size = size
        root = f"/next-{uuid.uuid4().hex}"
        self.board = JobBoard.connect(hosts, root)
        self.observer = JobBoard.connect(hosts, root)
        fill(self.board.client, root, size)
        self.meter = event_cpu_meter(self.observer)
        self.observer.watch(timeout=120)
        self.board.watch(timeout=120)
        self.samples: list[float] = []
        self.claim = self.board.claim_next("bench", timeout=10)

    def sample(self) -> None:
        """Time one claim_next in the steady state (right after the previous complete)."""
        assert self.claim is not None
        self.board.complete(self.claim, {"state": "SUCCESS"})
        began = time.perf_counter()
        self.claim = self.board.claim_next("bench", timeout=10)
        self.samples.append(time.perf_counter() - began)

    def finish(self) -> tuple[float, float]:
        """(median ms per claim_next, observer CPU µs per event)."""
        assert self.claim is not None
        self.board.complete(self.claim, {"state": "SUCCESS"})
        view = self.observer.watcher.view
        done = len(self.samples) + 1
        with view.condition:  # wait until the observer has seen every change
            while view.counts() != (self.size - done, 0):
                view.condition.wait(10)
        events, cpu = self.meter()
        self.board.close()
        self.observer.close()
        return statistics.median(self.samples) * 1000, cpu / max(events, 1) * 1e6


def next_job(hosts: str) -> tuple[tuple[float, float], tuple[float, float]]:
    """Interleaved samples at 1,000 and 20,000 jobs, so load drift hits both alike."""
    small, large = Backlog(hosts, 1000), Backlog(hosts, 20000)
    for _ in range(NEXT_JOB_SAMPLES):
        small.sample()
        large.sample()
    return small.finish(), large.finish()


def received_by_server(servers: ZooKeeperServers, session_id: int) -> int:
    pattern = re.compile(r"recved=(\d+),.*sid=0x([0-9a-f]+)")
    for line in four_letter_word(servers.ports[0].client, "cons").splitlines():
        match = pattern.search(line)
        if match and int(match.group(2), 16) == session_id:
            return int(match.group(1))
    raise RuntimeError("session not found in cons")


def idle(servers: ZooKeeperServers) -> tuple[float, float]:
    """(requests/s, server-received packets/s) of an idle claimer on a 1,000-job board."""
    hosts = servers.connect_string
    root = f"/idle-{uuid.uuid4().hex}"
    with JobBoard.connect(hosts, root) as producer, JobBoard.connect(hosts, root) as claimer:
        fill(producer.client, root, 1000)
        for _ in range(10):
            assert producer.claim_next("holder", timeout=10) is not None
        claimer.watch()
        sent: list[str] = []
        original = claimer.client._call
        claimer.client._call = lambda request, result: (
            sent.append(type(request).__name__),
            original(request, result),
        )[1]
        session_id = claimer.session_id
        assert session_id is not None
        before = received_by_server(servers, session_id)
        time.sleep(IDLE_SECONDS)  # the observation window
        after = received_by_server(servers, session_id)
        requests = len(sent)  # counted before close() removes the watches
    return requests / IDLE_SECONDS, (after - before - requests) / IDLE_SECONDS


def resync(hosts: str, backlog: int) -> tuple[bool, int, float]:
    root = f"/resync-{uuid.uuid4().hex}"
    with JobBoard.connect(hosts, root) as board:
        fill(board.client, root, backlog)
        began = time.perf_counter()
        try:
            children = board.client.get_children(board.paths.jobs)
        except Exception as error:
            show(f"resync_{backlog}_error", repr(error))
            return False, 0, 0.0
        elapsed = time.perf_counter() - began
    size = sum(4 + len(name.encode()) for name in children) + 8
    return len(children) == backlog, size, elapsed * 1000


def main() -> int:
    with ZooKeeperServers(1) as servers:
        hosts = servers.connect_string
        data = payload()
        show("payload_bytes", str(len(data)))
        # Each measured rate is taken right after a raw round, and compared with it, so that
        # the load of a shared machine drifting between rounds cancels out of the ratios.
        raw: list[float] = []
        posts: list[tuple[float, float, float]] = []
        one: list[float] = []
        four: list[float] = []
        for _ in range(REPEATS):
            raw.append(raw_sync(hosts, data))
            posts.append(posting(hosts))
            one.append(claim_complete(hosts, 1))
            four.append(claim_complete(hosts, 4))
        sync = statistics.median(raw)
        show("raw_create_sync_per_s", sync, "ceiling")
        show("raw_create_async_per_s", statistics.median(raw_async(hosts, data) for _ in range(3)))

        post_rate = statistics.median(r[0] for r in posts)
        first = statistics.median(r[1] for r in posts)
        last = statistics.median(r[2] for r in posts)
        show("post_per_s", post_rate, f"raw sync {sync:.0f}/s")
        show("post_vs_raw_sync", median_ratio([r[0] for r in posts], raw), "target >= 0.65")
        show("post_first_10pct_ms", first)
        show("post_last_10pct_ms", last)
        ratio("post_last_vs_first", last, first, "target <= 1.2")

        show("claim_complete_1proc_per_s", statistics.median(one), f"raw sync {sync:.0f}/s")
        show("claim_complete_4proc_per_s", statistics.median(four))
        show("claim_complete_1proc_vs_raw_sync", median_ratio(one, raw), "target >= 0.33")
        show("claim_complete_4proc_vs_raw_sync", median_ratio(four, raw), "target >= 0.33")
        lost = CONFLICTS.get(4, 0) / (REPEATS * CLAIM_BACKLOG)
        show("claim_4proc_conflicts_per_job", lost, "attempts lost to another claimer")

        (small_ms, small_cpu), (large_ms, large_cpu) = next_job(hosts)
        show("next_job_ms_at_1000", small_ms)
        show("next_job_ms_at_20000", large_ms)
        ratio("next_job_20000_vs_1000", large_ms, small_ms, "target <= 1.2")
        show("view_event_cpu_us_at_1000", small_cpu)
        show("view_event_cpu_us_at_20000", large_cpu, "peer: 11 ms at 1,000, 3.8 s at 20,000")

        requests, packets = idle(servers)
        show("idle_requests_per_s", requests, "target 0 beyond pings")
        show("idle_pings_per_s", packets, "packets the server received minus requests")

        for backlog in (20000, 50000):
            ok, size, ms = resync(hosts, backlog)
            show(f"resync_{backlog}_ok", str(ok))
            show(f"resync_{backlog}_reply_bytes", str(size), "jute.maxbuffer 1048575")
            show(f"resync_{backlog}_ms", ms)
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--claimer":
        sys.exit(claimer_main(*sys.argv[2:5]))
    sys.exit(main())
