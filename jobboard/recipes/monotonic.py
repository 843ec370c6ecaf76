"""A field of a pending job's document that only ever grows (e.g. a count kept by the job's
successive owners): a version-checked read-modify-write that never lowers the stored value, so
a late writer cannot undo a newer one's.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kazoo.exceptions import BadVersionError, KazooException, NoNodeError

from jobboard.errors import BoardUnavailable, InvalidInput
from jobboard.protocol.documents import DocumentError, decode_job, encode_job

if TYPE_CHECKING:
    from jobboard.board import JobBoard

READ_TIMEOUT = 10.0
"""Seconds one read or write may wait for ZooKeeper before it is retried."""



def int_field(document: dict[str, Any], field: str) -> int:
    """The field's value in a job document: an int, else 0 (absent, bool or another type)."""
    value = document.get(field, 0)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


class MonotonicField:
    """The integer `field` of the document of pending job `job_id` (`jobs/<id>`).

    With `ceiling`, the name of another integer field of the document: a value above that
    field's is not this job's to record (e.g. an attempt the job has not reached since it was
    restored), and `raise_to` leaves the document alone.
    """

    def __init__(self, board: JobBoard, job_id: str, field: str, *,
                 ceiling: str | None = None) -> None:
        self.board = board
        self.job_id = job_id
        self.field = field
        self.ceiling = ceiling
        self.path = board.paths.job(job_id)

    def raise_to(self, value: int, *, until: float,
                 stopping: Callable[[], bool] = lambda: False) -> bool:
        """Raise the field to `value`, never lowering it.

        True once the document says at least `value`. False when the job is not pending (it
        left `jobs/`: completed, parked or trashed), its document is unreadable or would grow
        too large, or `ceiling` is below `value`. Retried at once on a conflicting change, and
        with a backoff while ZooKeeper is unreachable, until the monotonic time `until` or
        `stopping()`: then BoardUnavailable.
        """
        client = self.board.client
        timeout_error = client.handler.timeout_exception
        delay = 0.1
        while True:
            try:
                data, stat = client.get_async(self.path).get(timeout=READ_TIMEOUT)
                document = decode_job(self.job_id, data)
                if int_field(document, self.field) >= value:
                    return True
                if self.ceiling is not None and document[self.ceiling] < value:
                    return False
                document[self.field] = value
                client.set_async(self.path, encode_job(document), version=stat.version).get(
                    timeout=READ_TIMEOUT)
                return True
            except BadVersionError:
                continue  # changed meanwhile (a claim, an update): read it again
            except (NoNodeError, DocumentError, InvalidInput):  # gone, unreadable, or full
                return False
            except (KazooException, timeout_error) as exc:
                if time.monotonic() + delay > until or stopping():
                    raise BoardUnavailable(
                        f"job {self.job_id}: could not raise {self.field} to {value}: {exc!r}"
                    ) from exc
                time.sleep(delay)  # a retry's backoff: ZooKeeper is unreachable for now
                delay = min(delay * 2, 1.0)
