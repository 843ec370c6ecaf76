"""What every CLI command shares: connection options, settings, opening the board and the store,
and turning errors into one line on stderr and a documented exit status."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from conductor.config import ConfigError, Settings, load_settings, mask_url, prepare_db_url
from jobboard.board import JobBoard
from jobboard.connect import TLSOptions
from jobboard.errors import (
    BoardError,
    BoardUnavailable,
    InvalidInput,
    JobNotFound,
    NotAuthorized,
)
from persistence import ExecutionStore, open_store
from persistence.errors import PersistenceError, SchemaOutdated, StoreUnavailable

EXIT_OK = 0
EXIT_FAILED = 1  # the operation failed, or the job it waited for failed
EXIT_USAGE = 2  # bad arguments; also `wait` timing out
EXIT_UNAVAILABLE = 3  # ZooKeeper or the database could not be reached


class CommandError(Exception):
    """A command failed in a way the user should read; `status` is the exit status."""

    def __init__(self, message: str, status: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.status = status


def add_board_options(parser: argparse.ArgumentParser) -> None:
    """Options to reach the job board (ZooKeeper)."""
    group = parser.add_argument_group("job board (ZooKeeper)")
    group.add_argument("--zk", metavar="HOSTS", help="ZooKeeper hosts, e.g. zk1:2181,zk2:2181")
    group.add_argument("--root", metavar="PATH", help="board root znode (default /conductor)")
    group.add_argument(
        "--session-timeout", type=float, metavar="S", help="ZooKeeper session timeout (s)"
    )
    group.add_argument("--connect-timeout", type=float, metavar="S",
                       help="give up connecting to ZooKeeper after S seconds (default 15)")
    add_common_options(parser)


def add_db_options(parser: argparse.ArgumentParser) -> None:
    """Options to reach the execution database."""
    group = parser.add_argument_group("database")
    group.add_argument("--db", metavar="URL", help="sqlite:///path or postgresql+psycopg://...")
    add_common_options(parser)


def add_common_options(parser: argparse.ArgumentParser) -> None:
    if any("--config" in action.option_strings for action in parser._actions):
        return
    parser.add_argument("--config", metavar="FILE", help="YAML config file (or CONDUCTOR_CONFIG)")
    parser.add_argument("--json", action="store_true", help="print one JSON document")


FLAG_SETTINGS = ("zk", "root", "db", "session_timeout", "flows", "name", "max_jobs", "grace",
                 "http", "http_url", "http_secret", "http_max_body", "log_level",
                 "connect_timeout", "db_retry_for",
                 "max_crashes", "max_declines", "release_backoff", "executor", "workers",
                 "task_ledger")


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
    )


def open_execution_store(settings: Settings) -> ExecutionStore:
    return open_store(prepare_db_url(settings.db), retry_for=settings.db_retry_for)


def settings_from(args: argparse.Namespace) -> Settings:
    flags = {name: getattr(args, name) for name in FLAG_SETTINGS if hasattr(args, name)}
    return load_settings(flags, config_file=getattr(args, "config", None))


@contextmanager
def command_context(args: argparse.Namespace) -> Iterator[Context]:
    context = Context(settings_from(args), bool(getattr(args, "json", False)))
    try:
        yield context
    finally:
        context.close()


def parse_json_argument(text: str, what: str) -> Any:
    """A JSON value from the command line: literal JSON, `@file`, or `@-` for stdin."""
    source = what
    if text.startswith("@"):
        path = text[1:]
        source = f"{what} ({'stdin' if path == '-' else path})"
        try:
            text = sys.stdin.read() if path == "-" else open(path).read()  # noqa: SIM115
        except OSError as exc:
            raise CommandError(f"cannot read {source}: {exc.strerror}", EXIT_USAGE) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CommandError(
            f"{source} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
            EXIT_USAGE,
        ) from None


def run_command(handler: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Run a command handler, mapping every expected error to a message and an exit status."""
    try:
        return handler(args)
    except CommandError as exc:
        return report(args, str(exc), exc.status)
    except ConfigError as exc:
        return report(args, f"configuration: {exc}", EXIT_USAGE)
    except (BoardUnavailable, StoreUnavailable) as exc:
        return report(args, str(exc), EXIT_UNAVAILABLE)
    except SchemaOutdated as exc:
        return report(args, str(exc), EXIT_FAILED)
    except NotAuthorized as exc:
        return report(args, f"not authorized: {exc}", EXIT_FAILED)
    except (InvalidInput, JobNotFound) as exc:
        return report(args, str(exc), EXIT_FAILED)
    except (BoardError, PersistenceError) as exc:
        return report(args, str(exc), EXIT_FAILED)
    except KeyboardInterrupt:
        return report(args, "interrupted", 130)


def report(args: argparse.Namespace, message: str, status: int) -> int:
    """Print an error on stderr (as JSON with --json) and return the exit status."""
    if getattr(args, "json", False):
        sys.stderr.write(json.dumps({"error": message, "status": status}) + "\n")
    else:
        sys.stderr.write(f"conductor: error: {message}\n")
    return status


__all__ = [
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_UNAVAILABLE",
    "EXIT_USAGE",
    "CommandError",
    "Context",
    "add_board_options",
    "add_db_options",
    "command_context",
    "mask_url",
    "parse_json_argument",
    "run_command",
]
