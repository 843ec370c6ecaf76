"""`conductor chaos`: shake real conductors and a ZooKeeper ensemble, then check the promises.

Starts its own 3-server ZooKeeper ensemble on free loopback ports and, unless --db is given, its
own SQLite file; CONDUCTOR_* settings and config files are not used. See docs/chaos.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from conductor.chaos import ChaosConfig, ChaosConfigError, ChaosRunner
from conductor.chaos.checker import CHECKS
from conductor.cli.parser import parse_json_argument
from conductor.cli.statuses import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    CommandError,
)
from conductor.testing import ConditionTimeout
from jobboard.testing.zkserver import ZooKeeperLaunchError

DESCRIPTION = """\
Run conductors under chaos and check the promises. Starts a 3-server ZooKeeper ensemble and
CONDUCTORS `conductor run` processes (each with --task-ledger, so every task start of any flow
is recorded), posts JOBS jobs, and while they run SIGKILLs random conductors (starting a new
one each time, so capacity stays), SIGSTOPs/SIGCONTs others for about a session timeout, and
SIGKILLs the ZooKeeper leader (restarted a few seconds later), at seeded random intervals.
Then it checks, from the board, the database and the ledger:
  {checks},
and that every conductor not killed exits 0 on SIGTERM without having logged an unexpected
error (a Python traceback).
By default the jobs run the demo flow demo.steps; give --flows, --flow and --inputs to shake
your own flows. Exit status 0 when every check passes, 1 otherwise (the failing checks are
listed), 2 for bad arguments.""".format(checks=", ".join(CHECKS))


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `conductor chaos` to the CLI."""
    chaos = commands.add_parser(
        "chaos", help="shake conductors and ZooKeeper while jobs run, then check the promises",
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    defaults = ChaosConfig()
    work = chaos.add_argument_group("the work")
    work.add_argument("--jobs", type=int, default=defaults.jobs, metavar="N",
                      help=f"jobs to post (default {defaults.jobs})")
    work.add_argument("--flows", action="append", metavar="MODULE|FILE",
                      help="flows for the conductors, as `conductor run --flows` (repeatable; "
                      "default conductor.demo)")
    work.add_argument("--flow", default=defaults.flow, metavar="NAME",
                      help=f"flow of every job (default {defaults.flow})")
    work.add_argument("--inputs", metavar="JSON|@FILE",
                      help="inputs of every job (required unless the flow is demo.steps)")
    work.add_argument("--steps", type=int, default=defaults.steps, metavar="N",
                      help=f"demo.steps only: tasks per job (default {defaults.steps})")
    work.add_argument("--seconds", type=float, default=defaults.seconds, metavar="S",
                      help=f"demo.steps only: seconds per task (default {defaults.seconds:g})")
    fleet = chaos.add_argument_group("the fleet")
    fleet.add_argument("--conductors", type=int, default=defaults.conductors, metavar="N",
                       help=f"conductors running at once (default {defaults.conductors})")
    fleet.add_argument("--max-jobs", type=int, default=defaults.max_jobs, metavar="N",
                       help=f"--max-jobs of each conductor (default {defaults.max_jobs})")
    fleet.add_argument("--session-timeout", type=float, default=defaults.session_timeout,
                       metavar="S", help="ZooKeeper session timeout of the conductors "
                       f"(default {defaults.session_timeout:g})")
    fleet.add_argument("--db", metavar="URL", help="database (default: a new SQLite file in "
                       "the work directory); e.g. postgresql+psycopg://user@host/db")
    shake = chaos.add_argument_group("the chaos")
    shake.add_argument("--interval", type=float, default=defaults.interval, metavar="S",
                       help="mean seconds between chaos events, each a kill, a pause or a "
                       f"leader kill (default {defaults.interval:g})")
    shake.add_argument("--duration", type=float, metavar="S",
                       help="stop the chaos after S seconds (default: when every job ended)")
    shake.add_argument("--kill-weight", type=float, default=defaults.kill_weight, metavar="W",
                       help=f"relative odds of a SIGKILL (default {defaults.kill_weight:g}; "
                       "0: none)")
    shake.add_argument("--pause-weight", type=float, default=defaults.pause_weight,
                       metavar="W", help="relative odds of a SIGSTOP/SIGCONT (default "
                       f"{defaults.pause_weight:g})")
    shake.add_argument("--leader-kill-weight", type=float, default=defaults.leader_kill_weight,
                       metavar="W", help="relative odds of a ZooKeeper leader SIGKILL "
                       f"(default {defaults.leader_kill_weight:g})")
    shake.add_argument("--seed", type=int, default=defaults.seed, metavar="N",
                       help=f"seed of every random choice (default {defaults.seed})")
    shake.add_argument("--bound", type=float, metavar="S",
                       help="seconds from the first post to the last completion (default: "
                       "one minute + twice the ideal time + a session timeout and 5 s per "
                       "chaos event)")
    out = chaos.add_argument_group("output")
    out.add_argument("--expect", default=defaults.expected_state, metavar="STATE",
                     help=f"state every job must end in (default {defaults.expected_state})")
    out.add_argument("--work-dir", type=Path, metavar="DIR",
                     help="keep logs, ledgers and the SQLite file here (default: a temporary "
                     "directory, removed unless a check fails)")
    out.add_argument("--keep", action="store_true", help="keep the temporary directory")
    out.add_argument("--json", action="store_true", help="print the report as JSON")
    out.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    chaos.set_defaults(handler=cmd_chaos)


def config_from(args: argparse.Namespace) -> ChaosConfig:
    inputs = None
    if args.inputs is not None:
        inputs = parse_json_argument(args.inputs, "--inputs")
        if not isinstance(inputs, dict):
            raise CommandError("--inputs must be a JSON object", EXIT_USAGE)
    config = ChaosConfig(
        jobs=args.jobs, conductors=args.conductors, max_jobs=args.max_jobs,
        flows=tuple(args.flows) if args.flows else ChaosConfig().flows, flow=args.flow,
        inputs=inputs, steps=args.steps, seconds=args.seconds,
        session_timeout=args.session_timeout, interval=args.interval, duration=args.duration,
        kill_weight=args.kill_weight, pause_weight=args.pause_weight,
        leader_kill_weight=args.leader_kill_weight, seed=args.seed, db=args.db,
        work_dir=args.work_dir, bound=args.bound, expected_state=args.expect)
    try:
        config.validate()
    except ChaosConfigError as exc:
        raise CommandError(str(exc), EXIT_USAGE) from None
    return config


def cmd_chaos(args: argparse.Namespace) -> int:
    config = config_from(args)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # The runner's own ZooKeeper connection drops whenever the leader is killed: expected.
    logging.getLogger("jobboard.kazoo").setLevel(logging.ERROR)

    def say(line: str) -> None:
        if not args.quiet:
            stamp = time.strftime("%H:%M:%S")
            sys.stderr.write(f"{stamp} chaos: {line}\n")
            sys.stderr.flush()

    runner = ChaosRunner(config, say=say, keep=args.keep)
    try:
        runner.prepare()
        result = runner.run()
    except ChaosConfigError as exc:
        raise CommandError(str(exc), EXIT_USAGE) from None
    except ZooKeeperLaunchError as exc:
        raise CommandError(f"cannot start ZooKeeper: {exc}", EXIT_UNAVAILABLE) from None
    except (RuntimeError, ConditionTimeout) as exc:  # e.g. a conductor that cannot start
        raise CommandError(f"the chaos run could not proceed: {exc}") from None
    report = result.report
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        print(report.render())
    return EXIT_OK if report.ok else EXIT_FAILED
