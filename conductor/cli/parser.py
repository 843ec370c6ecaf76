"""Reading the command line: a parser that raises instead of exiting, and the values that
commands read from a file or stdin (JSON arguments, secrets)."""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from conductor.cli.statuses import EXIT_USAGE, CommandError


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


def secret_argument(text: str) -> str:
    """A secret flag's value: @FILE is the first line of FILE (stripped), anything else the
    secret itself (kept for compatibility: it shows in process listings). Errors name the file,
    never the secret."""
    if not text.startswith("@"):
        return text
    path = text[1:]
    try:
        with open(path) as source:
            return source.readline().strip()
    except OSError as exc:
        raise argparse.ArgumentTypeError(
            f"cannot read the secret from {path}: {exc.strerror}") from None
