"""Follow one member's presence document (`<root>/<kind>/<member-id>`, see JobBoard.register),
for instance to learn when a conductor process has registered: kazoo's DataWatch recipe with the
document decoded.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kazoo.recipe.watchers import DataWatch

from jobboard.protocol.documents import DocumentError, decode_object

if TYPE_CHECKING:
    from jobboard.board import JobBoard

MemberListener = Callable[[dict[str, Any] | None], bool]


class MemberWatch:
    """Calls `func(document)` now and whenever the member's node changes: the presence
    document, or None while there is no node (or it is unreadable). `func` returning False
    stops the watch. It runs on kazoo's callback thread: it must not block nor call the board.
    Survives reconnections and new sessions (DataWatch does)."""

    def __init__(self, board: JobBoard, kind: str, member_id: str,
                 func: MemberListener) -> None:
        self.path = board.paths.member(kind, member_id)
        self._func = func
        self._watch = DataWatch(board.client, self.path, self._changed)

    def _changed(self, data: bytes | None, _stat: object) -> bool:
        try:
            document = decode_object(data) if data else None
        except DocumentError:
            document = None
        return self._func(document)
