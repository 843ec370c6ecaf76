"""Loaded as a flows module (`conductor run --flows tests.delegation.killpoint`), it arms a crash:
the conductor process SIGKILLs itself right after recording a completion that reached its HTTP
endpoint, before waking the job. It registers no flows."""

from __future__ import annotations

import os
import signal

from conductor.delegation.callbacks import Callbacks
from jobboard.recipes import Intent


def _die(self: Callbacks, intent: Intent) -> str:
    os.kill(os.getpid(), signal.SIGKILL)
    raise AssertionError("unreachable")


Callbacks._wake_or_notify = _die  # type: ignore[method-assign]
