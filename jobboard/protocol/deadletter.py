"""Move an unreadable job to the trash with the reason, in one multi-op.

Used by every reader that meets a garbage document (claim, get, listings): the bad job leaves the
board at once, with its raw bytes kept (base64) for inspection, and never blocks other jobs.
"""

from __future__ import annotations

import logging
from typing import Any

from kazoo.exceptions import BadVersionError, NodeExistsError, NoNodeError

from jobboard.protocol.context import BoardContext, commit, first_failure
from jobboard.protocol.documents import encode, trash_entry

log = logging.getLogger(__name__)


def dead_letter(
    ctx: BoardContext,
    job_id: str,
    origin_path: str,
    raw: bytes | None,
    version: int,
    *,
    reason: str,
) -> bool:
    """Trash the node at `origin_path` (version-checked) keeping `raw`; True if we moved it.

    False when someone else changed or moved it first (the caller simply moves on). An older
    dead letter of the same id is replaced by this one.
    """
    origin = origin_path.rsplit("/", 2)[-2]
    entry = encode(trash_entry(reason, origin, raw=raw if raw is not None else b""))
    trash_path = ctx.paths.trashed(job_id)
    for replace in (False, True):

        def build(tx: Any, replace: bool = replace) -> None:
            if replace:
                tx.set_data(trash_path, entry)
            else:
                tx.create(trash_path, entry, ctx.acl)
            tx.delete(origin_path, version=version)

        results = ctx.read(commit, ctx.client, build)
        failure = first_failure(results)
        if failure is None:
            log.warning("job %s moved to the trash: %s", job_id, reason)
            return True
        _, error = failure
        if isinstance(error, NodeExistsError) and not replace:
            continue
        if isinstance(error, (BadVersionError, NoNodeError)):
            return False
        raise error
    return False
