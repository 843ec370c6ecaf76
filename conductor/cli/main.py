"""Entry point of the `conductor` console script: one subcommand per operation.

Exit status: 0 success; 1 the operation (or the job waited for) failed; 2 bad usage or `wait`
timed out; 3 ZooKeeper or the database could not be reached; 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys

from conductor.cli import (
    board_commands,
    chaos_command,
    db_commands,
    delegation_commands,
    run_command,
)
from conductor.cli.common import run_command as run_handler


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="conductor",
        description="Run workflows reliably on a fleet of machines coordinated by ZooKeeper.",
        epilog="Settings come from flags, then CONDUCTOR_* environment variables, then the "
        "--config YAML file, then defaults. Exit status: 0 ok, 1 failed, 2 usage or wait "
        "timeout, 3 ZooKeeper or database unavailable.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run_command.register(commands)
    board_commands.register(commands)
    db_commands.register(commands)
    delegation_commands.register(commands)
    chaos_command.register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the process exit status."""
    args = build_parser().parse_args(argv)
    return run_handler(args.handler, args)


if __name__ == "__main__":
    sys.exit(main())
