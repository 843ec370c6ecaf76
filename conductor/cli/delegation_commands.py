"""`conductor complete` (finish a delegated task with its token) and `conductor serve` (the
HTTP callback endpoint on its own, without running jobs).

`complete` exits 0 when the completion was recorded, 1 when the token is unknown or was already
used (or its task already has an outcome), 2 on bad usage (bad JSON), 3 when ZooKeeper or the
database cannot be reached (nothing was recorded unless it says so: retry).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys

from conductor.cli.context import command_context, open_board, open_execution_store
from conductor.cli.options import (
    add_board_options,
    add_db_options,
    add_http_options,
    add_setting_options,
    set_json_help,
    settings_from,
)
from conductor.cli.output import Announcer, emit_json
from conductor.cli.parser import parse_json_argument
from conductor.cli.statuses import EXIT_OK, EXIT_USAGE, CommandError
from conductor.config import Settings, mask_url
from conductor.delegation.callbacks import Callbacks
from conductor.delegation.errors import InvalidCompletion
from conductor.delegation.webhook import CallbackServer

_STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `complete` and `serve` to the CLI."""
    complete = commands.add_parser(
        "complete", help="complete a delegated task with its token",
        description="Record the outcome of a delegated task and wake its job. The token may be "
        "given as @FILE or - (stdin) to keep it out of process listings.")
    complete.add_argument("token", help="the completion token, @FILE, or - to read stdin")
    outcome = complete.add_mutually_exclusive_group(required=True)
    outcome.add_argument("--result", metavar="JSON",
                         help="the task's result: JSON, @FILE or @- (stdin)")
    outcome.add_argument("--fail", metavar="MESSAGE",
                         help="fail the delegated attempt with this message (its task's retry "
                         "policy applies)")
    add_board_options(complete)
    add_db_options(complete)
    complete.set_defaults(handler=cmd_complete)

    serve = commands.add_parser(
        "serve", help="serve the HTTP callback endpoint (POST /v1/callbacks/TOKEN)")
    add_http_options(serve)
    add_setting_options(serve, "log_level")
    add_board_options(serve)
    add_db_options(serve)
    set_json_help(serve, "print a JSON line on stdout when listening (http: the address, the "
                  "real port for :0; pid, zk, root, db) and one when stopped (signal, status); "
                  "logs stay text on stderr")
    serve.set_defaults(handler=cmd_serve)


def _read_token(text: str) -> str:
    if text == "-":
        return sys.stdin.readline().strip()
    if text.startswith("@"):
        try:
            with open(text[1:]) as source:
                return source.readline().strip()
        except OSError as exc:
            raise CommandError(f"cannot read the token from {text[1:]}: {exc.strerror}",
                               EXIT_USAGE) from None
    return text.strip()


def cmd_complete(args: argparse.Namespace) -> int:
    if args.token == "-" and args.result == "@-":
        raise CommandError("the token and the result cannot both come from stdin", EXIT_USAGE)
    token = _read_token(args.token)
    with command_context(args) as ctx:
        callbacks = Callbacks(ctx.store, ctx.board)
        try:
            if args.fail is not None:
                report = callbacks.complete(token, error=args.fail)
            else:
                report = callbacks.complete(
                    token, result=parse_json_argument(args.result, "--result"))
        except InvalidCompletion as exc:
            raise CommandError(str(exc), EXIT_USAGE) from None
        if ctx.json:
            emit_json(report.to_json())
        else:
            print(f"completed task {report.task!r} (attempt {report.attempt}) of job "
                  f"{report.job_id} with {'an error' if report.outcome == 'error' else 'a result'}"
                  f"; job {report.job}")
    return EXIT_OK


def cmd_serve(args: argparse.Namespace) -> int:
    signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
    settings = settings_from(args)
    logging.basicConfig(level=settings.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not settings.http:
        raise CommandError("no address to serve on: give --http HOST:PORT (or CONDUCTOR_HTTP)",
                           EXIT_USAGE)
    store = open_execution_store(settings)
    board = None
    try:
        board = open_board(settings)
        with start_server(settings, Callbacks(store, board)) as server:
            announcer = Announcer() if args.json else None
            if announcer is not None:
                announcer.announce_ready(http=server.url, pid=os.getpid(), zk=settings.zk,
                                         root=settings.root, db=mask_url(settings.db))
            received = signal.sigwait(_STOP_SIGNALS)
            logging.getLogger("conductor.http").info(
                "%s: stopping", signal.Signals(received).name)
        if announcer is not None:
            announcer.announce_stopped(pid=os.getpid(), signal=signal.Signals(received).name,
                                       status=EXIT_OK)
    finally:
        if board is not None:
            board.close()
        store.close()
    return EXIT_OK


def start_server(settings: Settings, callbacks: Callbacks) -> CallbackServer:
    """The callback endpoint the settings describe, started."""
    assert settings.http is not None
    try:
        server = CallbackServer(settings.http, callbacks, secret=settings.http_secret,
                                max_body=settings.http_max_body,
                                max_connections=settings.http_max_connections,
                                request_deadline=settings.http_request_deadline)
    except ValueError as exc:
        raise CommandError(str(exc), EXIT_USAGE) from None
    except OSError as exc:
        raise CommandError(f"cannot serve HTTP on {settings.http}: {exc.strerror}") from None
    return server.start()


def public_url(settings: Settings, server: CallbackServer) -> str | None:
    """The base URL handed to third parties with each token: --http-url, else the server's
    own address unless it listens on every interface (then nobody knows the public name)."""
    if settings.http_url:
        return settings.http_url
    host = str(server.httpd.server_address[0])
    if host in ("0.0.0.0", "::", ""):
        logging.getLogger("conductor.http").warning(
            "listening on every interface: set --http-url so that delegations carry a "
            "callback URL")
        return None
    return server.url


__all__ = ["cmd_complete", "cmd_serve", "public_url", "start_server"]
