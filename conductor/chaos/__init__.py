"""The chaos suite: real conductors and a real ZooKeeper ensemble, shaken while they work, then
checked from the board, the database and the task ledger (see docs/chaos.md).

`ChaosRunner(ChaosConfig(...)).run()` runs a scenario and returns its report; `check` runs the
checks alone on collected (or crafted) evidence. `conductor chaos` is the command line.
"""

from conductor.chaos.checker import CHECKS, CheckOptions, check
from conductor.chaos.config import ChaosConfig, ChaosConfigError
from conductor.chaos.evidence import ChaosEvent, Evidence, JobEvidence, Owner, SavedAtom, Start
from conductor.chaos.report import CheckResult, Report, Summary
from conductor.chaos.runner import ChaosResult, ChaosRunner

__all__ = [
    "CHECKS",
    "ChaosConfig",
    "ChaosConfigError",
    "ChaosEvent",
    "ChaosResult",
    "ChaosRunner",
    "CheckOptions",
    "CheckResult",
    "Evidence",
    "JobEvidence",
    "Owner",
    "Report",
    "SavedAtom",
    "Start",
    "Summary",
    "check",
]
