"""Commands that need only the job board: post, jobs, wait, trash, restore, cancel, status."""

from __future__ import annotations

import argparse
import getpass
import time
from typing import Any

from conductor import jobfields
from conductor.cli.context import command_context
from conductor.cli.options import add_board_options
from conductor.cli.output import age, emit_json, emit_table, timestamp
from conductor.cli.parser import parse_json_argument
from conductor.cli.statuses import EXIT_FAILED, EXIT_OK, EXIT_TIMEOUT, EXIT_USAGE, CommandError
from jobboard.errors import WaitTimeout
from jobboard.model import Job, JobState, Outcome


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    post = commands.add_parser("post", help="post a job; prints its id")
    post.add_argument("flow", help="registered flow name")
    post.add_argument("--inputs", default="{}", metavar="JSON",
                      help="flow inputs: a JSON object, @FILE or @- for stdin (default {})")
    post.add_argument("--priority", type=int, default=0, metavar="P",
                      help="0..999, higher runs first (default 0)")
    post.add_argument("--key", metavar="K", help="idempotency key: a second post returns the first")
    post.add_argument("--name", metavar="N", help="job name (default: the flow name)")
    post.set_defaults(handler=cmd_post)

    jobs = commands.add_parser("jobs", help="list jobs on the board")
    jobs.add_argument("--trashed", action="store_true", help="list the dead letters instead")
    jobs.set_defaults(handler=cmd_jobs)

    wait = commands.add_parser(
        "wait", help="wait for a job's outcome (exit 0 success, 1 failed/reverted/trashed, "
        "2 timeout: with --json the error's kind is \"timeout\", a usage error's \"usage\")")
    wait.add_argument("job")
    wait.add_argument("--timeout", type=float, metavar="S", help="give up after S seconds")
    wait.set_defaults(handler=cmd_wait)

    trash = commands.add_parser("trash", help="move a job to the dead letters")
    trash.add_argument("job")
    trash.add_argument("--reason", default=None, help="why (default: trashed by <user>)")
    trash.add_argument("--force", action="store_true",
                       help="even if a conductor holds it (the conductor's work is lost)")
    trash.set_defaults(handler=cmd_trash)

    restore = commands.add_parser("restore", help="put a dead letter back on the board")
    restore.add_argument("job")
    restore.set_defaults(handler=cmd_restore)

    cancel = commands.add_parser(
        "cancel", help="cancel a job: a running job stops at the next task boundary and reverts")
    cancel.add_argument("job")
    cancel.set_defaults(handler=cmd_cancel)

    status = commands.add_parser("status", help="conductors, claims and backlog")
    status.set_defaults(handler=cmd_status)

    for parser in (post, jobs, wait, trash, restore, cancel, status):
        add_board_options(parser)


def job_summary(job: Job) -> dict[str, Any]:
    """A job as JSON for --json output."""
    document = job.document or {}
    return {
        "id": job.id,
        "state": job.state.value,
        "name": document.get("name"),
        "flow": document.get("flow"),
        "priority": job.priority,
        "key": document.get("key"),
        "created_at": document.get("created_at"),
        "attempts": document.get("attempts"),
        "owner": job.owner,
        "claimed_since": job.since,
        "epoch": job.epoch,
        "parked_until": job.until,
        "cancel": jobfields.cancel_request(document),
        "outcome": job.outcome,
        "reason": job.reason,
    }


def cmd_post(args: argparse.Namespace) -> int:
    inputs = parse_json_argument(args.inputs, "--inputs")
    if not isinstance(inputs, dict):
        raise CommandError(
            f"--inputs must be a JSON object, got {type(inputs).__name__}", EXIT_USAGE)
    with command_context(args) as ctx:
        job = ctx.board.post(args.name or args.flow, args.flow, inputs, args.priority, args.key)
        if ctx.json:
            emit_json(job_summary(job))
        else:
            print(job.id)
    return EXIT_OK


def cmd_jobs(args: argparse.Namespace) -> int:
    with command_context(args) as ctx:
        listed = ctx.board.trashed() if args.trashed else ctx.board.jobs()
        if ctx.json:
            emit_json([job_summary(job) for job in listed])
            return EXIT_OK
        if args.trashed:
            emit_table(
                [(j.id, (j.document or {}).get("flow"), (j.document or {}).get("name"), j.reason)
                 for j in listed],
                ["id", "flow", "name", "reason"])
            return EXIT_OK
        now = time.time()
        rows = []
        for job in listed:
            document = job.document or {}
            owner = (job.owner or {}).get("id")
            detail = None
            if job.state is JobState.PARKED:
                detail = f"until {timestamp(job.until)}" if job.until else "until woken"
            if jobfields.cancel_requested(document):
                detail = "cancel requested"
            rows.append((job.id, job.state.value, document.get("flow"), document.get("name"),
                         job.priority, owner, age(document.get("created_at"), now),
                         document.get("attempts"), detail))
        emit_table(rows, ["id", "state", "flow", "name", "priority", "owner", "age", "attempts",
                          "note"])
    return EXIT_OK


def outcome_summary(outcome: Outcome) -> dict[str, Any]:
    body = outcome.outcome or {}
    return {
        "job": outcome.job_id,
        "state": body.get("state", outcome.state.value),
        "board_state": outcome.state.value,
        "result": body.get("result"),
        "failure": body.get("failure"),
        "reason": outcome.reason,
        "finished_at": outcome.finished_at,
    }


def outcome_status(outcome: Outcome) -> int:
    """0 if the job's flow succeeded; 1 if it failed, was reverted (or cancelled), or trashed."""
    if outcome.state is JobState.COMPLETED and (outcome.outcome or {}).get("state") == "SUCCESS":
        return EXIT_OK
    return EXIT_FAILED


def cmd_wait(args: argparse.Namespace) -> int:
    with command_context(args) as ctx:
        try:
            outcome = ctx.board.wait(args.job, args.timeout)
        except WaitTimeout as exc:
            raise CommandError(str(exc), EXIT_TIMEOUT, kind="timeout") from None
        summary = outcome_summary(outcome)
        if ctx.json:
            emit_json(summary)
        elif outcome.state is JobState.TRASHED:
            print(f"{args.job}: TRASHED: {outcome.reason}")
        else:
            failure = summary["failure"]
            detail = (f": {failure.get('type')}: {failure.get('message')}"
                      if isinstance(failure, dict) else "")
            print(f"{args.job}: {summary['state']}{detail}")
            if summary["state"] == "SUCCESS" and summary["result"] is not None:
                emit_json(summary["result"])
        return outcome_status(outcome)


def cmd_trash(args: argparse.Namespace) -> int:
    reason = args.reason or f"trashed by {getpass.getuser()} from the command line"
    with command_context(args) as ctx:
        ctx.board.trash(args.job, reason, force=args.force)
        if ctx.json:
            emit_json({"job": args.job, "state": "TRASHED", "reason": reason})
        else:
            print(f"{args.job}: trashed")
    return EXIT_OK


def cmd_restore(args: argparse.Namespace) -> int:
    with command_context(args) as ctx:
        job = ctx.board.restore(args.job)
        if ctx.json:
            emit_json(job_summary(job))
        else:
            print(f"{job.id}: restored ({job.state.value})")
    return EXIT_OK


def cmd_cancel(args: argparse.Namespace) -> int:
    cancel: jobfields.CancelRequest = {"at": time.time(), "by": getpass.getuser()}
    with command_context(args) as ctx:
        job = ctx.board.get(args.job)
        if job.state in (JobState.COMPLETED, JobState.TRASHED):
            raise CommandError(f"job {args.job} is already {job.state.value.lower()}")
        # The request goes into the document wherever the job is now (one version-checked
        # write); a parked job is then woken so that a conductor claims it and reverts. If it
        # was parked or woken between the read and the write, the write still lands: a wake
        # carries the document over, and a holder that parks adopts the changed document.
        request = jobfields.updates({jobfields.CANCEL: cancel})
        if ctx.board.update(args.job, request).state is JobState.PARKED:
            ctx.board.wake(args.job)  # False: someone else woke it, with the request in it
        if ctx.json:
            emit_json({"job": args.job, "cancel": cancel, "state": job.state.value})
        else:
            print(f"{args.job}: cancel requested ({job.state.value.lower()})")
    return EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    with command_context(args) as ctx:
        members = ctx.board.members("conductors")
        listed = ctx.board.jobs()
        trashed = ctx.board.trashed()
        counts = {state.value: 0 for state in (JobState.UNCLAIMED, JobState.CLAIMED,
                                               JobState.PARKED)}
        held: dict[str, list[str]] = {}
        for job in listed:
            counts[job.state.value] += 1
            if job.state is JobState.CLAIMED and job.owner:
                held.setdefault(str(job.owner.get("id")), []).append(job.id)
        counts["TRASHED"] = len(trashed)
        if ctx.json:
            emit_json({
                "conductors": [dict(m, jobs=held.get(str(m.get("id")), [])) for m in members],
                "backlog": counts,
                "claims": [{"job": j.id, "owner": j.owner, "since": j.since, "epoch": j.epoch}
                           for j in listed if j.state is JobState.CLAIMED],
            })
            return EXIT_OK
        now = time.time()
        print(f"conductors: {len(members)}")
        emit_table([(m.get("id"), m.get("host"), m.get("pid"), age(m.get("started"), now),
                     len(held.get(str(m.get("id")), [])), m.get("max_jobs"))
                    for m in members],
                   ["id", "host", "pid", "up", "jobs", "max_jobs"])
        print()
        print("backlog: " + ", ".join(f"{count} {state.lower()}"
                                      for state, count in counts.items()))
    return EXIT_OK
