"""JSON documents stored on the board: the job document (schema 1) and the entries wrapping it.

Job document: {"schema": 1, "id", "uuid", "name", "flow", "inputs": {...}, "priority", "key",
"created_at", "attempts", ...counters/flags merged by `updates`}. It is validated on post (clear
InvalidInput naming the field) and on every read (DocumentError with the reason: the caller moves
the job to the trash). Nothing is ever unpickled or imported from job data: it is plain JSON.
"""

from __future__ import annotations

import base64
import json
import math
import time
import uuid
from typing import Any

from jobboard.errors import InvalidInput
from jobboard.protocol.naming import MAX_PRIORITY, check_name, check_priority, is_job_id

SCHEMA_VERSION = 1
MAX_DOCUMENT_BYTES = 256 * 1024
MAX_OUTCOME_BYTES = 128 * 1024
MAX_REASON_CHARS = 2000
MAX_DEPTH = 64
RESERVED_FIELDS = frozenset(
    ("schema", "id", "uuid", "name", "flow", "inputs", "priority", "key", "created_at", "attempts")
)
_REQUIRED_TYPES: dict[str, tuple[type, ...]] = {
    "id": (str,),
    "uuid": (str,),
    "name": (str,),
    "flow": (str,),
    "inputs": (dict,),
    "priority": (int,),
    "created_at": (int, float),
    "attempts": (int,),
}


class DocumentError(ValueError):
    """A stored document is not what the board wrote; the message is the reason."""


def check_json(value: Any, where: str, depth: int = 0) -> None:
    """Raise InvalidInput naming the first place where `value` is not plain, finite JSON."""
    if depth > MAX_DEPTH:
        raise InvalidInput(f"{where}: nested deeper than {MAX_DEPTH} levels")
    if value is None or isinstance(value, (bool, str, int)):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidInput(f"{where}: float {value!r} is not finite and not valid JSON")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidInput(
                    f"{where}: key {key!r} is a {type(key).__name__}; JSON keys must be strings"
                )
            check_json(item, f"{where}[{key!r}]", depth + 1)
        return
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            check_json(item, f"{where}[{index}]", depth + 1)
        return
    raise InvalidInput(f"{where}: value of type {type(value).__name__} is not JSON")


def check_json_object(value: Any, what: str) -> dict[str, Any]:
    """`value` if it is a JSON object of plain, finite JSON values."""
    if not isinstance(value, dict):
        raise InvalidInput(f"{what} must be a JSON object (dict), got {type(value).__name__}")
    check_json(value, what)
    return value


def encode(document: dict[str, Any]) -> bytes:
    """Compact UTF-8 JSON."""
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def encode_job(document: dict[str, Any]) -> bytes:
    """Encode a job document, refusing one over MAX_DOCUMENT_BYTES."""
    data = encode(document)
    if len(data) > MAX_DOCUMENT_BYTES:
        raise InvalidInput(
            f"job document is {len(data)} bytes encoded; the limit is {MAX_DOCUMENT_BYTES} bytes "
            "(put large inputs elsewhere and pass a reference)"
        )
    return data


def new_job_document(
    job_id: str, *, name: str, flow: str, inputs: Any, priority: Any, key: str | None
) -> dict[str, Any]:
    """A validated job document for a post."""
    document = {
        "schema": SCHEMA_VERSION,
        "id": job_id,
        "uuid": uuid.uuid4().hex,
        "name": check_name("job name", name),
        "flow": check_name("flow name", flow),
        "inputs": check_json_object(inputs, "inputs"),
        "priority": check_priority(priority),
        "key": None if key is None else check_name("idempotency key", key),
        "created_at": time.time(),
        "attempts": 0,
    }
    return document


def decode_object(data: bytes | None) -> dict[str, Any]:
    """Parse stored bytes as a JSON object, or DocumentError with the reason."""
    if not data:
        raise DocumentError("empty data")
    try:
        value = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise DocumentError(f"not UTF-8 text: {error}") from None
    except ValueError as error:
        raise DocumentError(f"not JSON: {error}") from None
    except RecursionError:
        raise DocumentError("JSON nested too deeply to read") from None
    if not isinstance(value, dict):
        raise DocumentError(f"JSON {type(value).__name__} where an object was expected")
    return value


def validate_job(job_id: str, document: Any) -> dict[str, Any]:
    """`document` if it is a schema-1 job document for `job_id`, else DocumentError."""
    if not isinstance(document, dict):
        raise DocumentError(f"job document is a {type(document).__name__}, not an object")
    schema = document.get("schema")
    if schema != SCHEMA_VERSION:
        raise DocumentError(f"unknown schema version {schema!r} (this board reads version 1)")
    for field, types in _REQUIRED_TYPES.items():
        if field not in document:
            raise DocumentError(f"missing field {field!r}")
        value = document[field]
        if isinstance(value, bool) or not isinstance(value, types):
            raise DocumentError(f"field {field!r} is a {type(value).__name__}")
    if document["id"] != job_id:
        raise DocumentError(f"document id {document['id']!r} does not match its node {job_id!r}")
    if not is_job_id(job_id):
        raise DocumentError("node name is not a job id")
    if not 0 <= document["priority"] <= MAX_PRIORITY:
        raise DocumentError(f"priority {document['priority']} out of range")
    key = document.get("key")
    if key is not None and not isinstance(key, str):
        raise DocumentError(f"field 'key' is a {type(key).__name__}")
    if document["attempts"] < 0:
        raise DocumentError("negative attempts")
    return document


def decode_job(job_id: str, data: bytes | None) -> dict[str, Any]:
    """Parse and validate a stored job document, or DocumentError with the reason."""
    return validate_job(job_id, decode_object(data))


def merge_updates(document: dict[str, Any], updates: dict[str, Any] | None) -> dict[str, Any]:
    """A copy of `document` with `updates` merged; reserved fields cannot be updated."""
    if not updates:
        return dict(document)
    check_json_object(updates, "updates")
    reserved = sorted(RESERVED_FIELDS.intersection(updates))
    if reserved:
        raise InvalidInput(f"updates may not change reserved job fields: {', '.join(reserved)}")
    merged = dict(document)
    merged.update(updates)
    return merged


def cap_outcome(outcome: Any) -> dict[str, Any]:
    """The outcome to store: a JSON object, replaced by a truncation marker when too large."""
    check_json_object(outcome, "outcome")
    size = len(encode(outcome))
    if size <= MAX_OUTCOME_BYTES:
        return dict(outcome)
    marker: dict[str, Any] = {"truncated": True, "size": size, "limit": MAX_OUTCOME_BYTES}
    state = outcome.get("state")
    if isinstance(state, str) and len(state) <= 100:
        marker["state"] = state
    return marker


def clip_reason(reason: object) -> str:
    """A trash reason as bounded text."""
    text = str(reason)
    if len(text) > MAX_REASON_CHARS:
        return text[:MAX_REASON_CHARS] + "...[clipped]"
    return text


def trash_entry(
    reason: str, origin: str, document: dict[str, Any] | None = None, raw: bytes | None = None
) -> dict[str, Any]:
    """A dead letter: the job document (or its raw bytes in base64 when garbage) and why."""
    return {
        "job": document,
        "raw": None if raw is None else base64.b64encode(raw).decode("ascii"),
        "reason": clip_reason(reason),
        "trashed_at": time.time(),
        "from": origin,
    }


def raw_bytes(entry: dict[str, Any]) -> bytes | None:
    """The raw bytes kept in a trash entry for a garbage document, if any."""
    raw = entry.get("raw")
    return base64.b64decode(raw) if isinstance(raw, str) else None
