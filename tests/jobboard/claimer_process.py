"""A job board client in its own process, for multi-process tests (driven by JSON lines).

Usage: python -m tests.jobboard.claimer_process HOSTS ROOT OWNER SESSION_TIMEOUT
Prints {"ready": true, "session": hex}, then answers one JSON line per command on stdin:
  {"op": "claim", "job": id}      -> {"ok": true, "job", "epoch"} | {"ok": false, "error", "owner"}
  {"op": "complete"} / {"op": "release"}  (the last claim) -> {"ok": true} | {"ok": false, ...}
  {"op": "drain", "idle": s}      -> claim_next + complete until idle for s seconds:
                                     {"ok": true, "done": [[job, epoch], ...]}
  {"op": "quit"}
"""

from __future__ import annotations

import json
import sys
from typing import Any

from jobboard.board import JobBoard
from jobboard.errors import AlreadyClaimed, BoardError
from jobboard.model import Claim


def reply(**fields: Any) -> None:
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


def main() -> int:
    hosts, root, owner, session_timeout = sys.argv[1:5]
    board = JobBoard.connect(hosts, root, session_timeout=float(session_timeout))
    board.watch()
    reply(ready=True, session=f"{board.session_id:016x}")
    claim: Claim | None = None
    for line in sys.stdin:
        command = json.loads(line)
        op = command["op"]
        try:
            if op == "claim":
                claim = board.claim(command["job"], owner)
                reply(ok=True, job=claim.job_id, epoch=claim.epoch)
            elif op == "complete":
                assert claim is not None
                board.complete(claim, {"state": "SUCCESS", "by": owner})
                reply(ok=True)
            elif op == "release":
                assert claim is not None
                board.release(claim)
                reply(ok=True)
            elif op == "drain":
                done = []
                while True:
                    claim = board.claim_next(owner, timeout=command["idle"])
                    if claim is None:
                        break
                    board.complete(claim, {"state": "SUCCESS", "by": owner})
                    done.append([claim.job_id, claim.epoch])
                reply(ok=True, done=done)
            elif op == "quit":
                break
        except AlreadyClaimed as error:
            reply(ok=False, error="AlreadyClaimed", owner=error.owner)
        except BoardError as error:
            reply(ok=False, error=type(error).__name__, message=str(error))
    board.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
