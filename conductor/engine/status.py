"""The execution as a whole, as the core drives it: its state, its failure, and the one place
that state changes (checked by conductor.engine.transitions)."""

from __future__ import annotations

from typing import Any

from conductor.engine.transitions import check_execution
from persistence.records import ExecutionChange, ExecutionState, Failure


class ExecutionStatus:
    """State, failure and end of one execution.

    `failure` is the first failure (the reason it is compensated; kept when a revert fails
    too). `revert_failed`: a revert raised, so compensation stopped and the execution will end
    FAILED. `cancelled`: it was cancelled, now or before it was saved. `unsaved`: a change of
    the execution to save with the next records (a failure noted while it runs). `final`: its
    end, once decided.
    """

    def __init__(self, state: ExecutionState, failure: Failure | None, *, revert_failed: bool,
                 cancelled: bool) -> None:
        self.state = state
        self.failure = failure
        self.revert_failed = revert_failed
        self.cancelled = cancelled
        self.unsaved: ExecutionChange | None = None
        self.final: ExecutionChange | None = None

    def move(self, to: ExecutionState, *, result: Any = None, failure: Failure | None = None
             ) -> ExecutionChange:
        """Put the execution in state `to` (with `failure` as its failure, if given) and return
        the change to save: IllegalTransition if the tables do not allow it."""
        check_execution(self.state, to)
        self.state = to
        if failure is not None:
            self.failure = failure
        change = ExecutionChange(to, result=result, failure=self.failure)
        if to.finished:
            self.final = change
        return change

    def note_failure(self, failure: Failure) -> None:
        """The execution failed (it keeps its first failure) and keeps RUNNING while it is
        compensated; the change is saved with the next records."""
        if self.failure is None:
            self.failure = failure
        self.unsaved = self.move(ExecutionState.RUNNING)

    def take_unsaved(self) -> ExecutionChange | None:
        """The change to save now: the end, once decided, else any unsaved one."""
        change, self.unsaved = self.unsaved, None
        return self.final if self.final is not None else change
