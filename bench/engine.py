"""Engine overhead per task, beside TaskFlow on the same flows.

One run prints `name: value` lines (medians of several runs, wall time of a whole run of the
flow: build, compile, create the execution, run every no-op task, save every transition):

- engine_<flow>_<store>_ms_per_task for this engine, <flow> in linear200 (200 no-op tasks in a
  line) and unordered50 (50 no-op tasks in parallel), <store> in memory (MemoryStore) and sqlite
  (SqlStore on a temp file, the store's default settings: WAL, synchronous=FULL);
- taskflow_<flow>_<store>_ms_per_task for TaskFlow 6.x on the same flows (serial engine for the
  line, parallel engine for the unordered flow; memory backend and its SQLAlchemy SQLite backend);
Both engines get the same long-lived thread pool (16 workers), as a conductor daemon keeps one
for all its jobs; engine_unordered50_memory_cold_pool_ms_per_task shows ours with a new pool
per run (thread start-up included).
- speedup_<flow>_<store>: TaskFlow's ms/task divided by ours (target >= 10).
Targets: <= 0.3 ms/task in memory, <= 2 ms/task with SQLite.

TaskFlow is a bench-only dependency, in the project's `bench` extra (`make bench` installs it):
    .venv/bin/pip install -e '.[test,bench]'
    .venv/bin/python -P bench/engine.py
(without TaskFlow installed the taskflow_* and speedup_* lines are skipped).
"""

from __future__ import annotations

import contextlib
import logging
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

# `python bench/engine.py` puts bench/ first on sys.path, where bench/persistence.py would shadow
# the persistence package: drop it.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]

import futurist  # noqa: E402

from conductor.engine import LocalDispatcher, RunState, run_flow  # noqa: E402
from conductor.flow import linear, task, unordered  # noqa: E402
from persistence import MemoryStore, migrate, open_store  # noqa: E402

RUNS = {"memory": 7, "sqlite": 5}
TASKFLOW_RUNS = {"memory": 5, "sqlite": 3}
SHAPES = {"linear200": ("linear", 200), "unordered50": ("unordered", 50)}


def noop() -> None:
    return None


POOL = futurist.ThreadPoolExecutor(max_workers=16)
DISPATCHER = LocalDispatcher(POOL)


def engine_once(shape: str, count: int, store_kind: str, *, cold: bool = False) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        store: Any
        if store_kind == "sqlite":
            url = f"sqlite:///{tmp}/bench.db"
            migrate.upgrade(url)
            store = open_store(url)
        else:
            store = MemoryStore()
        try:
            started = time.perf_counter()
            pattern = linear if shape == "linear" else unordered
            flow = pattern(*[task(noop, name=f"t{i}") for i in range(count)])
            outcome = run_flow(flow, store=store, **({} if cold else {"dispatcher": DISPATCHER}))
            elapsed = time.perf_counter() - started
        finally:
            store.close()
    assert outcome.state is RunState.SUCCESS, outcome
    return elapsed * 1000 / count


def taskflow_once(shape: str, count: int, store_kind: str) -> float:
    from taskflow import engines  # noqa: PLC0415
    from taskflow import task as tf_task  # noqa: PLC0415
    from taskflow.patterns import linear_flow, unordered_flow  # noqa: PLC0415
    from taskflow.persistence import backends  # noqa: PLC0415

    class Noop(tf_task.Task):  # type: ignore[misc]
        def execute(self) -> None:
            return None

    with tempfile.TemporaryDirectory() as tmp:
        conf = (
            {"connection": f"sqlite:///{tmp}/taskflow.db"} if store_kind == "sqlite"
            else {"connection": "memory://"}
        )
        backend = backends.fetch(conf)
        with contextlib.closing(backend.get_connection()) as conn:
            conn.upgrade()
        try:
            started = time.perf_counter()
            flow_class = linear_flow.Flow if shape == "linear" else unordered_flow.Flow
            flow = flow_class("bench")
            for i in range(count):
                flow.add(Noop(name=f"t{i}"))
            if shape == "linear":
                engine = engines.load(flow, backend=backend, engine="serial")
            else:
                engine = engines.load(flow, backend=backend, engine="parallel", executor=POOL)
            engine.run()
            elapsed = time.perf_counter() - started
        finally:
            backend.close()
    return elapsed * 1000 / count


def median_of(runs: int, once: Callable[[], float]) -> float:
    once()  # warm-up (imports, first connections)
    return statistics.median(once() for _ in range(runs))


def main() -> int:
    logging.disable(logging.WARNING)
    try:
        import taskflow  # noqa: F401, PLC0415
        have_taskflow = True
    except ImportError:
        have_taskflow = False
        print("# taskflow is not installed here: taskflow_* lines skipped (see docstring)")
    print(f"cpu_count: {os.cpu_count()}")
    for name, (shape, count) in SHAPES.items():
        for store_kind in ("memory", "sqlite"):
            ours = median_of(RUNS[store_kind],
                             lambda: engine_once(shape, count, store_kind))  # noqa: B023
            print(f"engine_{name}_{store_kind}_ms_per_task: {ours:.3f}", flush=True)
            if shape == "unordered" and store_kind == "memory":
                cold = median_of(RUNS[store_kind],
                                 lambda: engine_once(shape, count, store_kind, cold=True))  # noqa: B023
                print(f"engine_{name}_{store_kind}_cold_pool_ms_per_task: {cold:.3f}")
            if not have_taskflow:
                continue
            theirs = median_of(TASKFLOW_RUNS[store_kind],
                               lambda: taskflow_once(shape, count, store_kind))  # noqa: B023
            print(f"taskflow_{name}_{store_kind}_ms_per_task: {theirs:.3f}", flush=True)
            print(f"speedup_{name}_{store_kind}: {theirs / ours:.1f}", flush=True)
    POOL.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
