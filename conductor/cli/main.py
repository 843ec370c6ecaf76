"""Entry point of the `conductor` console script: one subcommand per operation.

Exit status: 0 success; 1 the operation (or the job waited for) failed; 2 bad usage or `wait`
timed out; 3 ZooKeeper or the database could not be reached; 130 interrupted. With --json
anywhere on the command line every error, usage errors included, is one JSON object on stderr,
{"error", "status", "kind"}, whose kind ("usage", "timeout", "failed", "unavailable",
"interrupted") tells apart the two meanings of 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from conductor.cli import (
    board_commands,
    chaos_command,
    db_commands,
    delegation_commands,
    run_command,
)
from conductor.cli.output import report_failure, report_usage_error
from conductor.cli.parser import CommandParser, UsageError, json_requested
from conductor.cli.statuses import failure_for


def build_parser() -> argparse.ArgumentParser:
    # Typed as a plain ArgumentParser: the subcommands' parsers are CommandParsers too.
    parser: argparse.ArgumentParser = CommandParser(
        prog="conductor",
        description="Run workflows reliably on a fleet of machines coordinated by ZooKeeper.",
        epilog="Settings come from flags, then CONDUCTOR_* environment variables, then the "
        "--config YAML file, then defaults. Exit status: 0 ok, 1 failed, 2 usage or wait "
        "timeout, 3 ZooKeeper or database unavailable. With --json, errors (usage errors "
        "too) are one JSON object on stderr: {\"error\", \"status\", \"kind\"}, kind "
        "\"usage\" or \"timeout\" for status 2.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run_command.register(commands)
    board_commands.register(commands)
    db_commands.register(commands)
    delegation_commands.register(commands)
    chaos_command.register(commands)
    return parser


def run_handler(handler: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Run a command handler; an expected error ends it with a message and its exit status
    (`statuses.failure_for`), any other propagates (a bug, with its traceback)."""
    try:
        return handler(args)
    except (Exception, KeyboardInterrupt) as error:
        failure = failure_for(error)
        if failure is None:
            raise
        return report_failure(args, failure)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the process exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = build_parser().parse_args(argv)
    except UsageError as error:
        return report_usage_error(error, json_requested(argv))
    return run_handler(args.handler, args)


if __name__ == "__main__":
    sys.exit(main())
