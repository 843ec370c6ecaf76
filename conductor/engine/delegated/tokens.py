"""Completion tokens: how they look, how they are stored, and how a stored row is classified.

A token is `zkc_` followed by 43 URL-safe characters: 256 random bits from `secrets`. Only its
SHA-256 (hex) is stored; a completion looks the row up by that hash and then compares the stored
hash with the computed one in constant time (`hmac.compare_digest`), so a database whose text
comparison is looser than byte equality (collations) cannot let a near-miss through. A string
that does not have the token's shape is refused before any look-up.

Delegation rows that no third party can complete share the token-hash column, with a prefix a
SHA-256 hex digest never has:
- `timer:<hex>`: a durable timer; the attempt SUCCEEDS (result None) when its deadline passes
  (`context.sleep_until`, `context.delegate(on_deadline="succeed")`);
- `deadline:<hex>`: a bare deadline; the attempt FAILS with DelegationTimeout when it passes
  (a task that returns `Delegated(deadline=...)`).
Tokens never appear in reprs, log lines or exception messages: `redact()` scrubs any text that
might contain one.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import re
import secrets

from persistence.records import DelegationRecord

PREFIX = "zkc_"
TOKEN_BYTES = 32
TOKEN_PATTERN = re.compile(r"^zkc_[A-Za-z0-9_-]{43}$")
_ANYWHERE = re.compile(r"zkc_[A-Za-z0-9_-]{8,}")
TIMER_PREFIX = "timer:"
DEADLINE_PREFIX = "deadline:"


class RowKind(str, enum.Enum):
    """What a delegation row waits for."""

    TOKEN = "token"  # a completion from outside (the deadline, if any, fails the attempt)
    TIMER = "timer"  # its deadline: the attempt succeeds then
    DEADLINE = "deadline"  # its deadline: the attempt fails then


def new_token() -> tuple[str, str]:
    """A fresh token and the hash to store for it."""
    token = PREFIX + secrets.token_urlsafe(TOKEN_BYTES)
    return token, token_hash(token)


def token_hash(token: str) -> str:
    """The stored form of a token (hex SHA-256)."""
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def well_formed(token: object) -> bool:
    """Whether `token` has the shape of a completion token (nothing is looked up)."""
    return isinstance(token, str) and TOKEN_PATTERN.match(token) is not None


def matches(stored_hash: str, token: str) -> bool:
    """Constant-time check that `token` hashes to `stored_hash`."""
    return hmac.compare_digest(stored_hash.encode("ascii"), token_hash(token).encode("ascii"))


def timer_key() -> str:
    """Token-hash column value of a durable timer row."""
    return TIMER_PREFIX + secrets.token_hex(16)


def deadline_key() -> str:
    """Token-hash column value of a bare-deadline row."""
    return DEADLINE_PREFIX + secrets.token_hex(16)


def kind_of(row: DelegationRecord) -> RowKind:
    if row.token_hash.startswith(TIMER_PREFIX):
        return RowKind.TIMER
    if row.token_hash.startswith(DEADLINE_PREFIX):
        return RowKind.DEADLINE
    return RowKind.TOKEN


def callback_url(base: str | None, token: str) -> str | None:
    """The URL a third party POSTs the completion to, when an HTTP endpoint is configured."""
    if not base:
        return None
    return f"{base.rstrip('/')}/v1/callbacks/{token}"


def redact(text: str) -> str:
    """`text` with anything shaped like a token replaced (for log lines and error messages)."""
    return _ANYWHERE.sub(PREFIX + "<redacted>", text)
