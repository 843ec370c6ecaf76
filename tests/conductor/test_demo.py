"""`make demo` runs its scenario to the end: a SIGKILLed owner, a resumed job, nothing lost."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_the_demo_shows_a_job_resumed_after_its_owner_is_killed(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "conductor.demo.run", "--jobs", "2", "--steps", "4",
         "--seconds", "0.3", "--dir", str(tmp_path)],
        check=False, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "*** SIGKILL conductor-" in out
    assert "2/2 jobs completed" in out
    assert "step-3: ran 2x" in out and "step-4: ran 1x" in out
    assert "resumed" in out and "-> conductor-" in out
