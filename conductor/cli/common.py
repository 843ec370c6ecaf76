"""What every CLI command shares: connection options, settings, opening the board and the store,
and turning errors into one line on stderr and a documented exit status."""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, NoReturn

from conductor.config import ConfigError, Settings, load_settings, mask_url, prepare_db_url
from jobboard.board import JobBoard
from jobboard.errors import (
    AclMismatch,
    BoardError,
    BoardUnavailable,
    InvalidInput,
    JobNotFound,
    NotAuthorized,
)
from jobboard.zk.connect import TLSOptions
from persistence import ExecutionStore, open_store
from persistence.errors import PersistenceError, SchemaOutdated, StoreUnavailable

EXIT_OK = 0
EXIT_FAILED = 1  # the operation failed, or the job it waited for failed
EXIT_USAGE = 2  # bad arguments or settings (argparse's own status)
EXIT_TIMEOUT = 2  # `wait` timed out (the number; a JSON error's "kind" tells it apart)
EXIT_UNAVAILABLE = 3  # ZooKeeper or the database could not be reached
EXIT_INTERRUPTED = 130

KINDS = {EXIT_FAILED: "failed", EXIT_USAGE: "usage", EXIT_UNAVAILABLE: "unavailable",
         EXIT_INTERRUPTED: "interrupted"}
"""The "kind" of a JSON error for each exit status, unless the error names its own ("timeout")."""


class CommandError(Exception):
    """A command failed in a way the user should read; `status` is the exit status, `kind` the
    JSON error's kind (default: the status's, see KINDS)."""

    def __init__(self, message: str, status: int = EXIT_FAILED, kind: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind


class UsageError(Exception):
    """The command line does not parse (raised by CommandParser instead of exiting)."""

    def __init__(self, parser: argparse.ArgumentParser, message: str) -> None:
        super().__init__(message)
        self.parser = parser
        self.message = message


class CommandParser(argparse.ArgumentParser):
    """An ArgumentParser (and, through add_subparsers, every subcommand's parser) that raises
    UsageError instead of printing and exiting, so that `main` can print it as JSON."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(self, message)


_JSON_SPELLINGS = frozenset({"--json", "--jso", "--js"})  # argparse accepts unique prefixes


def json_requested(argv: Sequence[str]) -> bool:
    """Whether --json is on the command line (before any `--`), wherever it is."""
    return any(arg in _JSON_SPELLINGS for arg in itertools.takewhile(lambda a: a != "--", argv))


def report_usage_error(error: UsageError, as_json: bool) -> int:
    """A usage error on stderr: argparse's usage and message, or with --json the one JSON error
    object every command prints; returns EXIT_USAGE."""
    if as_json:
        write_json_error(f"{error.parser.prog}: {error.message}", EXIT_USAGE, "usage")
    else:
        error.parser.print_usage(sys.stderr)
        sys.stderr.write(f"{error.parser.prog}: error: {error.message}\n")
    return EXIT_USAGE


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
    group.add_argument("--repair-acls", dest="zk_repair_acls", action="store_const", const=True,
                       help="with zk_auth: put the board's ACL on existing board folders that "
                       "lack it (and every node below them), instead of refusing to start")
    add_common_options(parser)


def add_db_options(parser: argparse.ArgumentParser) -> None:
    """Options to reach the execution database."""
    group = parser.add_argument_group("database")
    group.add_argument("--db", metavar="URL", help="sqlite:///path or postgresql+psycopg://... "
                       "(a URL with a password shows in process listings: prefer CONDUCTOR_DB "
                       "or the config file)")
    add_common_options(parser)


def add_common_options(parser: argparse.ArgumentParser) -> None:
    if any("--config" in action.option_strings for action in parser._actions):
        return
    parser.add_argument("--config", metavar="FILE", help="YAML config file (or CONDUCTOR_CONFIG)")
    parser.add_argument("--json", action="store_true", help="print one JSON document")


def set_json_help(parser: argparse.ArgumentParser, text: str) -> None:
    """Say what --json means for a command that does not print one JSON document."""
    for action in parser._actions:
        if "--json" in action.option_strings:
            action.help = text


FLAG_SETTINGS = ("zk", "root", "db", "session_timeout", "flows", "name", "max_jobs", "grace",
                 "http", "http_url", "http_secret", "http_max_body", "http_max_connections",
                 "http_request_deadline", "log_level",
                 "connect_timeout", "db_retry_for",
                 "max_crashes", "max_declines", "release_backoff", "executor", "workers",
                 "task_ledger", "zk_repair_acls")


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
        return report(args, str(exc), exc.status, exc.kind)
    except ConfigError as exc:
        return report(args, f"configuration: {exc}", EXIT_USAGE)
    except (BoardUnavailable, StoreUnavailable) as exc:
        return report(args, str(exc), EXIT_UNAVAILABLE)
    except SchemaOutdated as exc:
        return report(args, str(exc), EXIT_FAILED)
    except NotAuthorized as exc:
        return report(args, f"not authorized: {exc}", EXIT_FAILED)
    except AclMismatch as exc:
        return report(args, f"{exc}; from the command line: --repair-acls (or "
                      "CONDUCTOR_ZK_REPAIR_ACLS=true) on any command, once", EXIT_FAILED)
    except (InvalidInput, JobNotFound) as exc:
        return report(args, str(exc), EXIT_FAILED)
    except (BoardError, PersistenceError) as exc:
        return report(args, str(exc), EXIT_FAILED)
    except KeyboardInterrupt:
        return report(args, "interrupted", EXIT_INTERRUPTED)


def report(args: argparse.Namespace, message: str, status: int, kind: str | None = None) -> int:
    """Print an error on stderr (as JSON with --json) and return the exit status."""
    if getattr(args, "json", False):
        write_json_error(message, status, kind)
    else:
        sys.stderr.write(f"conductor: error: {message}\n")
    return status


def write_json_error(message: str, status: int, kind: str | None = None) -> None:
    """The one JSON error shape: {"error": message, "status": exit status, "kind": usage |
    timeout | failed | unavailable | interrupted}, one line on stderr."""
    document = {"error": message, "status": status, "kind": kind or KINDS.get(status, "failed")}
    sys.stderr.write(json.dumps(document) + "\n")


__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_TIMEOUT",
    "EXIT_UNAVAILABLE",
    "EXIT_USAGE",
    "CommandError",
    "CommandParser",
    "Context",
    "UsageError",
    "add_board_options",
    "add_db_options",
    "command_context",
    "json_requested",
    "mask_url",
    "parse_json_argument",
    "report_usage_error",
    "run_command",
    "set_json_help",
    "write_json_error",
]
