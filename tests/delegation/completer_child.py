"""A completer process that dies (SIGKILL) right after recording a completion in the database,
before waking the job: the crash window the completion intents and the deadline keeper cover.

    python -m tests.delegation.completer_child ZK ROOT DB TOKEN
"""

from __future__ import annotations

import os
import signal
import sys

from conductor.delegation import Callbacks
from jobboard.board import JobBoard
from jobboard.recipes import Intent
from persistence import open_store


def main(zk: str, root: str, db: str, token: str) -> int:
    store = open_store(db)
    board = JobBoard.connect(zk, root, session_timeout=1.0)

    def die(self: Callbacks, intent: Intent) -> str:
        os.kill(os.getpid(), signal.SIGKILL)  # after the CAS, before the wake
        raise AssertionError("unreachable")

    Callbacks._wake_or_notify = die  # type: ignore[method-assign]
    Callbacks(store, board).complete(token, result={"from": "the dead completer"})
    return 1  # not reached


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:5]))
