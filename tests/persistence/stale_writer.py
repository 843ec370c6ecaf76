"""A writer process for the fencing tests: saves with one epoch until it is fenced off.

    python -m tests.persistence.stale_writer URL EXECUTION_ID EPOCH MODE [N] [MARKER]

Each save writes the atom "shared" (result {"by": "stale", "i": i}) and a new atom "stale-<i>".
Prints one line per save: "ok <i> <marker seen before the save started: 0/1>" or "fenced <i>",
then exits 0. MODE:
- race: save as fast as possible (MARKER: a file the rival creates once its take-over returned);
- pause-between: stop itself (SIGSTOP) after N saves, between transactions;
- pause-inside: stop itself inside save number N, after its atom rows were written but before
  COMMIT (holding the row lock / the SQLite write lock).
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

from sqlalchemy import event

from persistence import AtomRecord, AtomState, Fenced, open_store


def main(argv: list[str]) -> int:
    url, execution_id, epoch_text, mode = argv[:4]
    pause_at = int(argv[4]) if len(argv) > 4 else -1
    marker = argv[5] if len(argv) > 5 else None
    epoch = int(epoch_text)
    store = open_store(url, retry_for=30.0, idle_in_transaction_timeout=1.0)
    current = {"i": -1}

    if mode == "pause-inside":
        @event.listens_for(store.engine, "after_cursor_execute")
        def _stop_inside(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            if current["i"] == pause_at and statement.lstrip().upper().startswith(
                "INSERT INTO ATOMS"
            ):
                current["i"] = -2  # stop once, not again when the save is retried
                os.kill(os.getpid(), signal.SIGSTOP)

    for i in range(1_000_000):
        if mode == "pause-between" and i == pause_at:
            os.kill(os.getpid(), signal.SIGSTOP)
        seen = int(marker is not None and os.path.exists(marker))
        current["i"] = i if current["i"] != -2 else -2
        try:
            store.save(execution_id, epoch, [
                AtomRecord("shared", state=AtomState.SUCCESS, attempt=1,
                           result={"by": "stale", "i": i}),
                AtomRecord(f"stale-{i}", state=AtomState.SUCCESS, attempt=1, result=i),
            ])
        except Fenced:
            print(f"fenced {i}", flush=True)
            break
        print(f"ok {i} {seen}", flush=True)
    store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
