"""`conductor run`: the long-running conductor daemon.

Signals: the first SIGTERM or SIGINT stops claiming and gives the tasks in flight `grace`
seconds, then releases every held job (another conductor resumes it at once, no session expiry
needed) and exits 0. A second one stops waiting for the tasks in flight.

--json: one JSON line on stdout once the conductor's presence is registered (it claims from
then on), {"event": "ready", ...}, and one when it has stopped, {"event": "stopped", "status":
N, ...}. Logs stay text on stderr; an error before serving is the usual JSON error on stderr.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
import threading
import time
from typing import Any

from conductor.cli.context import open_board, open_execution_store
from conductor.cli.delegation_commands import public_url, start_server
from conductor.cli.options import (
    add_board_options,
    add_db_options,
    add_http_options,
    add_setting_group,
    set_json_help,
    settings_from,
)
from conductor.cli.output import Announcer
from conductor.cli.statuses import EXIT_FAILED, EXIT_OK, CommandError
from conductor.config import Settings, mask_url
from conductor.daemon import Conductor
from conductor.daemon.services import Policy
from conductor.delegation.callbacks import Callbacks
from conductor.delegation.webhook import CallbackServer
from conductor.engine.dispatch import Dispatcher, LocalDispatcher, ProcessDispatcher
from conductor.ledger import LedgerDispatcher
from conductor.registry import Registry, RegistryError
from jobboard.board import JobBoard
from jobboard.recipes import MemberWatch

_STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}
_DONE_SIGNAL = signal.SIGUSR1  # the serving thread tells the main thread it has finished


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    run = commands.add_parser("run", help="run a conductor daemon")
    add_setting_group(run, "daemon")
    add_http_options(run)
    add_setting_group(run, "policy")
    add_board_options(run)
    add_db_options(run)
    set_json_help(run, "print a JSON line on stdout when ready (presence registered: name, "
                  "pid, zk, root, db, http, flows) and one when stopped (status, jobs "
                  "finished); logs stay text on stderr")
    run.set_defaults(handler=cmd_run)


def announce_when_registered(announcer: Announcer, board: JobBoard, member: str,
                             **fields: object) -> None:
    """Announce "ready" once this process's presence node exists (watched, not polled)."""
    pid = os.getpid()

    def changed(document: dict[str, Any] | None) -> bool:
        if announcer.ready or announcer.stopped:
            return False  # stop watching
        if document is not None and document.get("pid") == pid:
            announcer.announce_ready(**fields)
            return False
        return True

    MemberWatch(board, "conductors", member, changed)


def configure_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(),
        stream=sys.stderr,
        format=f"%(asctime)s %(levelname)s [{settings.name}] %(name)s: %(message)s",
    )
    logging.getLogger("jobboard.kazoo").setLevel(max(logging.WARNING,
                                                     logging.getLogger().level))


def cmd_run(args: argparse.Namespace) -> int:
    # Block the stop signals in every thread (threads inherit the mask); only the main thread
    # takes them, with sigwait: no handler ever runs on top of code holding a lock.
    signal.pthread_sigmask(signal.SIG_BLOCK, {*_STOP_SIGNALS, _DONE_SIGNAL})
    settings = settings_from(args)
    configure_logging(settings)
    log = logging.getLogger("conductor")
    log.info("starting with %s", settings.describe())
    if not settings.flows:
        raise CommandError("no flows to run: give --flows MODULE|FILE (or CONDUCTOR_FLOWS)")
    try:
        registry = Registry.from_specs(settings.flows)
    except RegistryError as exc:
        raise CommandError(f"cannot load flows: {exc}") from None
    store = open_execution_store(settings)
    dispatcher = make_dispatcher(settings)
    board = None
    server: CallbackServer | None = None
    try:
        board = open_board(settings)
        callback_url = settings.http_url
        if settings.http:
            server = start_server(settings, Callbacks(store, board))
            callback_url = public_url(settings, server)
        conductor = Conductor(
            settings.name, board, store, registry, dispatcher,
            max_jobs=settings.max_jobs,
            policy=Policy(max_crashes=settings.max_crashes, max_declines=settings.max_declines,
                          grace=settings.grace),
            release_backoff=settings.release_backoff,
            info={"host": socket.gethostname(), "pid": os.getpid(), "started": time.time(),
                  **({"callbacks": callback_url} if callback_url else {})},
            callback_url=callback_url,
        )
        if not args.json:
            return _serve_until_signalled(conductor, log)
        announcer = Announcer()
        announce_when_registered(
            announcer, board, settings.name, name=settings.name, pid=os.getpid(), zk=settings.zk,
            root=settings.root, db=mask_url(settings.db),
            http=server.url if server is not None else None, callbacks=callback_url,
            max_jobs=settings.max_jobs, flows=sorted({entry.name for entry in registry.flows()}))
        status = _serve_until_signalled(conductor, log)
        announcer.announce_stopped(
            name=settings.name, pid=os.getpid(), status=status,
            finished={end.value: count for end, count in conductor.finished.items()})
        return status
    finally:
        if server is not None:
            server.stop()
        dispatcher.shutdown(wait=False)
        if board is not None:
            board.close()
        store.close()


def make_dispatcher(settings: Settings) -> Dispatcher:
    """The task executor the settings ask for, shared by every job of this conductor."""
    workers = settings.workers or max(16, 4 * settings.max_jobs)
    dispatcher: Dispatcher
    if settings.executor == "processes":
        dispatcher = ProcessDispatcher(max_workers=settings.workers or os.cpu_count() or 2)
    else:
        dispatcher = LocalDispatcher(max_workers=workers)
    if settings.task_ledger:
        dispatcher = LedgerDispatcher(dispatcher, settings.task_ledger)
    return dispatcher


def _serve_until_signalled(conductor: Conductor, log: logging.Logger) -> int:
    failure: list[BaseException] = []

    def serve() -> None:
        try:
            conductor.serve()
        except BaseException as exc:
            failure.append(exc)
        finally:
            os.kill(os.getpid(), _DONE_SIGNAL)

    thread = threading.Thread(target=serve, name="conductor-serve")
    thread.start()
    stops = 0
    while True:
        received = signal.sigwait({*_STOP_SIGNALS, _DONE_SIGNAL})
        if received == _DONE_SIGNAL:
            break
        stops += 1
        name = signal.Signals(received).name
        if stops == 1:
            log.info("%s: stopping (tasks in flight may finish, then jobs are released)", name)
            conductor.stop()
        else:
            log.warning("%s again: no more waiting for tasks in flight", name)
            conductor.stop(grace=0)
    thread.join()
    if failure:
        log.error("conductor failed: %s", failure[0])
        return EXIT_FAILED
    return EXIT_OK
