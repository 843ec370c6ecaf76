"""Commands that need the database: show, history, gc, db upgrade / db current."""

from __future__ import annotations

import argparse
import re
from typing import Any

from conductor.cli.board_commands import job_summary
from conductor.cli.context import command_context
from conductor.cli.options import add_board_options, add_db_options
from conductor.cli.output import duration, emit_json, emit_table, timestamp
from conductor.cli.statuses import EXIT_OK, EXIT_USAGE, CommandError
from conductor.config import prepare_db_url
from jobboard.errors import JobNotFound
from persistence import ExecutionRecord, ExecutionState, migrate
from persistence.connect import masked


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    show = commands.add_parser(
        "show", help="a job: board state, each task's state, attempts and timings, owners")
    show.add_argument("job")
    show.set_defaults(handler=cmd_show)

    history = commands.add_parser("history", help="recent executions with their outcome")
    history.add_argument("--limit", type=int, default=20, metavar="N")
    history.add_argument("--flow", metavar="NAME", help="only this flow")
    history.add_argument("--state", action="append", metavar="STATE",
                         choices=[s.value for s in ExecutionState], help="only these states")
    history.set_defaults(handler=cmd_history)

    gc = commands.add_parser(
        "gc", help="delete finished executions and board outcomes older than an age")
    gc.add_argument("--older-than", required=True, metavar="AGE",
                    help="e.g. 3600, 90m, 12h, 7d")
    gc.set_defaults(handler=cmd_gc)

    db = commands.add_parser("db", help="database schema")
    db_commands = db.add_subparsers(dest="db_command", required=True, metavar="COMMAND")
    upgrade = db_commands.add_parser("upgrade", help="create or upgrade the schema")
    upgrade.set_defaults(handler=cmd_db_upgrade)
    current = db_commands.add_parser("current", help="print the schema revision")
    current.set_defaults(handler=cmd_db_current)

    for parser in (show, gc):
        add_board_options(parser)
    for parser in (show, history, gc, upgrade, current):
        add_db_options(parser)


def execution_summary(execution: ExecutionRecord, owners: list[Any]) -> dict[str, Any]:
    return {
        "id": execution.id,
        "job": execution.job_id,
        "flow": execution.flow_name,
        "flow_version": execution.flow_version,
        "state": execution.state.value,
        "epoch": execution.epoch,
        "owner": execution.owner,
        "created_at": execution.created_at,
        "updated_at": execution.updated_at,
        "finished_at": execution.finished_at,
        "result": execution.result,
        "failure": execution.failure.to_json() if execution.failure else None,
        "owners": [{"epoch": o.epoch, "owner": o.owner, "taken_at": o.taken_at} for o in owners],
        "tasks": [
            {
                "name": atom.name,
                "kind": atom.kind,
                "state": atom.state.value,
                "attempt": atom.attempt,
                "started_at": atom.started_at,
                "finished_at": atom.finished_at,
                "failure": atom.failure.to_json() if atom.failure else None,
            }
            for atom in execution.atoms.values()
        ],
    }


def cmd_show(args: argparse.Namespace) -> int:
    with command_context(args) as ctx:
        try:
            job: dict[str, Any] | None = job_summary(ctx.board.get(args.job))
        except JobNotFound:
            job = None
        execution = ctx.store.find_by_job(args.job)
        if job is None and execution is None:
            raise CommandError(f"job {args.job} is neither on the board nor in the database")
        summary = None
        if execution is not None:
            summary = execution_summary(execution, ctx.store.owners(execution.id))
        if ctx.json:
            emit_json({"job": job, "execution": summary})
            return EXIT_OK
        _print_show(args.job, job, summary)
    return EXIT_OK


def _print_show(job_id: str, job: dict[str, Any] | None, execution: dict[str, Any] | None) -> None:
    print(f"job:       {job_id}")
    if job is not None:
        print(f"board:     {job['state']}  flow={job['flow']}  name={job['name']}  "
              f"priority={job['priority']}  attempts={job['attempts']}")
        if job["owner"]:
            print(f"claimed:   by {job['owner'].get('id')} since {timestamp(job['claimed_since'])}"
                  f"  epoch={job['epoch']}")
        if job["reason"]:
            print(f"reason:    {job['reason']}")
    else:
        print("board:     gone (outcome purged)")
    if execution is None:
        print("execution: not started")
        return
    print(f"execution: {execution['state']}  id={execution['id']}  epoch={execution['epoch']}  "
          f"owner={execution['owner']}")
    if execution["failure"]:
        failure = execution["failure"]
        print(f"failure:   {failure['type']}: {failure['message']}")
    print()
    emit_table(
        [(t["name"], t["state"], t["attempt"], timestamp(t["started_at"]),
          duration(t["finished_at"] - t["started_at"])
          if t["finished_at"] and t["started_at"] else None,
          f"{t['failure']['type']}: {t['failure']['message']}" if t["failure"] else None)
         for t in execution["tasks"]],
        ["task", "state", "attempt", "started", "took", "error"])
    print()
    emit_table([(o["epoch"], o["owner"], timestamp(o["taken_at"])) for o in execution["owners"]],
               ["epoch", "owner", "since"])


def cmd_history(args: argparse.Namespace) -> int:
    with command_context(args) as ctx:
        states = [ExecutionState(s) for s in args.state] if args.state else None
        found = ctx.store.history(limit=args.limit, flow_name=args.flow, states=states)
        if ctx.json:
            emit_json([execution_summary(e, ctx.store.owners(e.id)) for e in found])
            return EXIT_OK
        emit_table(
            [(e.job_id, e.flow_name, e.state.value, e.owner, e.epoch, timestamp(e.updated_at),
              str(e.failure) if e.failure else None) for e in found],
            ["job", "flow", "state", "owner", "epoch", "updated", "failure"])
    return EXIT_OK


_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_age(text: str) -> float:
    match = _AGE.match(text)
    if not match:
        raise CommandError(f"age {text!r} is not like 3600, 90m, 12h or 7d", EXIT_USAGE)
    return float(match.group(1)) * _UNITS[match.group(2)]


def cmd_gc(args: argparse.Namespace) -> int:
    older_than = parse_age(args.older_than)
    with command_context(args) as ctx:
        executions = ctx.store.collect_garbage(older_than)
        outcomes = ctx.board.purge_outcomes(older_than)
        if ctx.json:
            emit_json({"executions": executions, "outcomes": outcomes})
        else:
            print(f"deleted {executions} executions and {outcomes} board outcomes")
    return EXIT_OK


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    with command_context(args) as ctx:
        revision = migrate.upgrade(prepare_db_url(ctx.settings.db))
        if ctx.json:
            emit_json({"db": masked(ctx.settings.db), "revision": revision})
        else:
            print(f"{masked(ctx.settings.db)}: schema at revision {revision}")
    return EXIT_OK


def cmd_db_current(args: argparse.Namespace) -> int:
    with command_context(args) as ctx:
        revision = migrate.current(ctx.settings.db)
        needed = migrate.head()
        if ctx.json:
            emit_json({"db": masked(ctx.settings.db), "revision": revision, "head": needed})
        else:
            print(f"{revision or 'none'} (this version needs {needed})")
    return EXIT_OK
