"""Recipes on a job board, in kazoo's recipe shape (a small class over a board and a path): the
ZooKeeper patterns that components built on the board need, so that they never touch kazoo.

- `Election`: one leader among a board's contenders (kazoo's Lock in `<root>/keeper`);
- `MonotonicField`: a field of a pending job's document that only ever grows;
- `Intents`: durable intents with a live ephemeral twin (`<root>/completions` for completions);
- `FolderWatch`: a folder's children as they come and go (a persistent recursive watch);
- `MemberWatch`: one member's presence document as it changes;
- `parked_deadlines`, `outcome_entry`: reads of parked entries and outcome entries.

Their errors are board errors (jobboard.errors); see docs/jobboard.md.
"""

from jobboard.recipes.election import Election
from jobboard.recipes.folderwatch import FolderWatch
from jobboard.recipes.intents import Intent, Intents, parse_intent
from jobboard.recipes.members import MemberWatch
from jobboard.recipes.monotonic import MonotonicField, int_field
from jobboard.recipes.reads import Deadlines, outcome_entry, parked_deadlines

__all__ = [
    "Deadlines",
    "Election",
    "FolderWatch",
    "Intent",
    "Intents",
    "MemberWatch",
    "MonotonicField",
    "int_field",
    "outcome_entry",
    "parked_deadlines",
    "parse_intent",
]
