"""What a command works with: its settings, and the job board and the execution store opened
from them (lazily, closed when the command ends)."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from conductor.cli.options import settings_from
from conductor.config import Settings, prepare_db_url
from jobboard.board import JobBoard
from jobboard.zk.connect import TLSOptions
from persistence import ExecutionStore, open_store


@dataclass
class Context:
    """Settings plus lazily opened connections, closed when the command ends."""

    settings: Settings
    json: bool
    _board: JobBoard | None = field(default=None, repr=False)
    _store: ExecutionStore | None = field(default=None, repr=False)

    @property
    def board(self) -> JobBoard:
        if self._board is None:
            self._board = open_board(self.settings)
        return self._board

    @property
    def store(self) -> ExecutionStore:
        if self._store is None:
            self._store = open_execution_store(self.settings)
        return self._store

    def close(self) -> None:
        if self._board is not None:
            self._board.close()
        if self._store is not None:
            self._store.close()


def open_board(settings: Settings) -> JobBoard:
    tls = None
    if settings.zk_tls or settings.zk_ca or settings.zk_certfile:
        tls = TLSOptions(ca=settings.zk_ca, certfile=settings.zk_certfile,
                         keyfile=settings.zk_keyfile)
    return JobBoard.connect(
        settings.zk,
        settings.root,
        session_timeout=settings.session_timeout,
        credentials=settings.zk_auth,
        tls=tls,
        start_timeout=settings.connect_timeout,
        repair_acls=settings.zk_repair_acls,
    )


def open_execution_store(settings: Settings) -> ExecutionStore:
    return open_store(prepare_db_url(settings.db), retry_for=settings.db_retry_for)


@contextmanager
def command_context(args: argparse.Namespace) -> Iterator[Context]:
    context = Context(settings_from(args), bool(getattr(args, "json", False)))
    try:
        yield context
    finally:
        context.close()
