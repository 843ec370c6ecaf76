"""Child process of the crash tests: runs a flow on a SQLite store, appending one JSON line per
task start (and per revert) to an append-only ledger; can be told to block in one step so the
parent can SIGKILL it there.

    python -m tests.engine.crash_child DB_URL LEDGER JOB_ID EPOCH BLOCK_AT MODE
"""

from __future__ import annotations

import json
import os
import sys
import threading
from typing import Any

from conductor.engine import run_flow
from conductor.flow import TaskContext, linear, task
from persistence import open_store

STEPS = 6


def _append(ledger: str, entry: dict[str, Any]) -> None:
    line = (json.dumps(entry) + "\n").encode()
    fd = os.open(ledger, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def build(block_at: str, mode: str) -> Any:
    def step(name: str) -> Any:
        def run(ledger: str, context: TaskContext) -> str:
            _append(ledger, {"event": "run", "task": name, "attempt": context.attempt,
                             "key": context.idempotency_key, "pid": os.getpid()})
            if block_at == f"run:{name}":
                threading.Event().wait()  # the parent kills us here
            if mode == "fail" and name == f"t{STEPS - 1}":
                raise RuntimeError("the last step fails")
            return name

        def undo(ledger: str, context: TaskContext) -> None:
            _append(ledger, {"event": "revert", "task": name, "attempt": context.attempt,
                             "pid": os.getpid()})
            if block_at == f"revert:{name}":
                threading.Event().wait()

        return task(run, name=name, provides=f"out-{name}", revert=undo)

    return linear(*[step(f"t{i}") for i in range(STEPS)])


def main() -> int:
    url, ledger, job_id, epoch, block_at, mode = sys.argv[1:]
    store = open_store(url)
    outcome = run_flow(build(block_at, mode), {"ledger": ledger}, store=store, job_id=job_id,
                       epoch=int(epoch), owner=f"pid-{os.getpid()}")
    print(json.dumps({"state": outcome.state.value, "execution": outcome.execution_id}))
    store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
