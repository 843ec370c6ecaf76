"""Module-level tasks: importable by name, so they can run in worker processes and in the
crash-test child."""

from __future__ import annotations

import os

from conductor.flow import task


@task(provides="doubled")
def double(n: int) -> int:
    return n * 2


@task(provides="answer")
def add_pid(doubled: int) -> list[int]:
    return [doubled + 1, os.getpid()]
