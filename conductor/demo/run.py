"""`make demo`: two conductors, a few jobs, one owner SIGKILLed mid-flow, the other resumes.

Starts a local ZooKeeper server and two `conductor run` processes on a SQLite file, posts
`demo.steps` jobs, SIGKILLs the conductor that owns the first job once its third step has
started, and prints every task start as it happens (from the ledger the tasks append to), then a
summary showing that the other conductor resumed the job without re-running finished steps.
Everything it starts is stopped by PID on the way out, also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from conductor.ledger import read_ledger
from conductor.testing import ConductorProcess, wait_until
from jobboard.board import JobBoard
from jobboard.testing.zkserver import ZooKeeperServers
from persistence import migrate, open_store

SESSION_TIMEOUT = 2.0
ROOT = "/demo"


def say(text: str = "") -> None:
    print(text, flush=True)


class Demo:
    """The demo's processes and files, and its scenario step by step."""

    def __init__(self, workdir: Path, zk: ZooKeeperServers, board: JobBoard) -> None:
        self.workdir = workdir
        self.ledger = workdir / "ledger.jsonl"
        self.db = f"sqlite:///{workdir / 'demo.db'}"
        self.zk = zk
        self.board = board
        self.conductors = [
            ConductorProcess(name, zk=zk.connect_string, root=ROOT, db=self.db,
                             session_timeout=SESSION_TIMEOUT, max_jobs=2, log_dir=workdir)
            for name in ("conductor-a", "conductor-b")
        ]
        self.names: dict[int, str] = {}
        self.posted: list[str] = []
        self.shown = 0
        self.start = time.time()

    def show_new_starts(self) -> None:
        """Print the ledger lines not printed yet, naming conductors instead of pids."""
        entries = read_ledger(self.ledger)
        for entry in entries[self.shown:]:
            who = self.names.get(entry["pid"], f"pid {entry['pid']}")
            say(f"  {entry['t'] - self.start:6.2f}s  {who:<12} {entry['job'][-8:]}  "
                f"{entry['task']} (attempt {entry['attempt']})")
        self.shown = len(entries)

    def run(self, jobs: int, steps: int, seconds: float) -> int:
        for conductor in self.conductors:
            conductor.start()
        for conductor in self.conductors:
            conductor.wait_registered(self.board)
            self.names[conductor.pid] = conductor.name
            say(f"{conductor.name}: pid {conductor.pid} (log {conductor.log_path})")
        inputs = {"steps": steps, "seconds": seconds, "ledger": str(self.ledger)}
        self.posted = [self.board.post(f"demo-{i + 1}", "demo.steps", inputs).id
                       for i in range(jobs)]
        watched = self.posted[0]
        say(f"\nposted {jobs} jobs of {steps} steps ({seconds:g} s each); watching {watched}")
        say("task starts (from the ledger the tasks append to):")
        self.start = time.time()

        def third_step_started() -> bool:
            self.show_new_starts()
            return any(e["job"] == watched and e["task"] == "step-3"
                       for e in read_ledger(self.ledger))

        wait_until(third_step_started, 120, "the watched job's step-3 to start")
        owner_pid = (self.board.get(watched).owner or {}).get("pid")
        victim = next(c for c in self.conductors if c.pid == owner_pid)
        victim.kill()
        killed = time.time()
        say(f"\n*** SIGKILL {victim.name} (pid {victim.pid}), owner of {watched}, during step-3."
            f"\n*** Its ZooKeeper session ({SESSION_TIMEOUT:g} s) expires, its claims vanish, "
            "and the other conductor, notified by a watch, takes over.\n")

        def all_done() -> bool:
            self.show_new_starts()
            return all(self.board.get(job).state.value == "COMPLETED" for job in self.posted)

        wait_until(all_done, 300, "every job to complete")
        self.show_new_starts()
        return self.summary(watched, victim, killed)

    def summary(self, watched: str, victim: ConductorProcess, killed: float) -> int:
        entries = [e for e in read_ledger(self.ledger) if e["job"] == watched]
        runs = Counter(e["task"] for e in entries)
        say(f"\nsummary of {watched}:")
        for task in sorted(runs, key=lambda name: int(name.split("-")[1])):
            where = [self.names.get(e["pid"], "?") for e in entries if e["task"] == task]
            note = "  <- in flight at the kill: run again, same attempt" if runs[task] > 1 else ""
            say(f"  {task}: ran {runs[task]}x on {', '.join(where)}{note}")
        resumed = min((e["t"] for e in entries if e["pid"] != victim.pid and e["t"] > killed),
                      default=None)
        if resumed is not None:
            say(f"  resumed {resumed - killed:.2f} s after the SIGKILL "
                f"(session timeout {SESSION_TIMEOUT:g} s)")
        with open_store(self.db) as store:
            execution = store.find_by_job(watched)
            if execution is not None:
                say("  owners (each take-over raises the fencing epoch): " + " -> ".join(
                    f"{o.owner.split('@')[0]} (epoch {o.epoch})"
                    for o in store.owners(execution.id)))
        finished = sum(1 for job in self.posted
                       if self.board.get(job).state.value == "COMPLETED")
        rerun = sorted(task for task, count in runs.items() if count > 1)
        say(f"\n{finished}/{len(self.posted)} jobs completed. Steps run twice: "
            f"{', '.join(rerun) or 'none'} (only one in flight at the kill may be; a step whose "
            "success was saved never is).")
        say(f"saved executions: conductor history --db {self.db}")
        return 0 if finished == len(self.posted) and len(rerun) <= 1 else 1


def run_demo(workdir: Path, **scenario: Any) -> int:
    say(f"zkconductor demo; files in {workdir}")
    with ZooKeeperServers(1, tick_time_ms=200, base_dir=str(workdir / "zookeeper")) as zk:
        say(f"ZooKeeper server: {zk.connect_string} (pid {zk.pid(0)})")
        board = JobBoard.connect(zk.connect_string, ROOT, session_timeout=10)
        demo = Demo(workdir, zk, board)
        migrate.upgrade(demo.db)
        try:
            return demo.run(**scenario)
        finally:
            for conductor in demo.conductors:
                conductor.stop()
            board.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="zkconductor demo: survive a SIGKILL mid-flow")
    parser.add_argument("--jobs", type=int, default=3)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=0.8)
    parser.add_argument("--dir", help="keep the files here (default: a new temp directory)")
    args = parser.parse_args(argv)
    workdir = Path(args.dir or tempfile.mkdtemp(prefix="zkconductor-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        return run_demo(workdir, jobs=args.jobs, steps=args.steps, seconds=args.seconds)
    except KeyboardInterrupt:
        say("interrupted; everything started was stopped")
        return 130


if __name__ == "__main__":
    sys.exit(main())
