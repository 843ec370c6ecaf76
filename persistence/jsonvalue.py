"""JSON, never pickle: the one encoding of inputs, results and failures.

A value is accepted only if it round-trips unchanged in meaning: dict keys must be strings (json
would silently turn 1 into "1"), floats must be finite (PostgreSQL's json rejects NaN). Tuples are
accepted and come back as lists. On refusal the error names what was being saved, where in the
value the problem is, and the offending type.
"""

from __future__ import annotations

import json
import math
from typing import Any

from persistence.errors import NotSerializable
from persistence.records import JSONValue

_SCALARS = (str, int, float, bool, type(None))


def dumps(value: JSONValue, *, what: str) -> str:
    """Encode `value` as compact JSON text, or raise NotSerializable naming `what`."""
    try:
        text = json.dumps(value, allow_nan=False, separators=(",", ":"), ensure_ascii=False)
    except RecursionError:
        raise NotSerializable(f"{what} is nested too deeply to be saved as JSON") from None
    except (TypeError, ValueError) as exc:
        raise NotSerializable(_describe(value, what) or f"{what} is not JSON: {exc}") from None
    if _has_non_string_key(value):
        raise NotSerializable(_describe(value, what) or f"{what} has a non-string dict key")
    return text


def loads(text: str | bytes) -> JSONValue:
    """Decode JSON text written by dumps."""
    return json.loads(text)


def check(value: JSONValue, *, what: str) -> JSONValue:
    """Return a JSON-faithful copy of `value` (what a store would give back), or raise."""
    return json.loads(dumps(value, what=what))


def _has_non_string_key(value: Any) -> bool:
    if isinstance(value, dict):
        return any(not isinstance(k, str) or _has_non_string_key(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(_has_non_string_key(v) for v in value)
    return False


def _describe(
    value: Any, what: str, where: str = "", within: frozenset[int] = frozenset()
) -> str | None:
    """Find the first offending part of `value`, as a sentence naming its place and type.
    `within`: ids of the containers on the path to `value` (a value inside itself is circular).
    """
    if isinstance(value, float) and not math.isfinite(value):
        return f"{what}{where} is {value!r}, which JSON cannot represent"
    if isinstance(value, _SCALARS):
        return None
    if isinstance(value, (dict, list, tuple)):
        if id(value) in within:
            return f"{what}{where} contains itself (a circular reference), which JSON cannot hold"
        within = within | {id(value)}
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return (
                    f"{what}{where} has a dict key {key!r} of type {type(key).__name__}; "
                    "JSON keys must be strings"
                )
            found = _describe(item, what, f"{where}[{key!r}]", within)
            if found:
                return found
        return None
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            found = _describe(item, what, f"{where}[{index}]", within)
            if found:
                return found
        return None
    kind = type(value)
    return (
        f"{what}{where} is of type {kind.__module__}.{kind.__qualname__}, which is not JSON "
        "(use str, int, float, bool, None, list or dict)"
    )
