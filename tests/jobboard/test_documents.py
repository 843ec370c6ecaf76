"""Validation of names, priorities, inputs and stored documents (pure logic, no ZooKeeper)."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from jobboard.errors import InvalidInput
from jobboard.protocol.documents import (
    MAX_DOCUMENT_BYTES,
    MAX_OUTCOME_BYTES,
    DocumentError,
    cap_outcome,
    decode_job,
    encode_job,
    merge_updates,
    new_job_document,
)
from jobboard.protocol.naming import (
    BoardPaths,
    JobIdGenerator,
    check_job_id,
    check_name,
    check_priority,
)


def make(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "name": "n",
        "flow": "f",
        "inputs": {},
        "priority": 0,
        "key": None,
    }
    fields.update(overrides)
    return new_job_document(JobIdGenerator().new_id(fields["priority"]), **fields)


def test_job_ids_sort_by_priority_then_creation() -> None:
    ids = JobIdGenerator()
    low_first = ids.new_id(1)
    high = ids.new_id(500)
    low_second = ids.new_id(1)
    top = ids.new_id(999)
    assert sorted([low_second, low_first, high, top]) == [top, high, low_first, low_second]
    assert [check_job_id(i) for i in (low_first, top)] == [low_first, top]


def test_job_id_time_part_is_strictly_increasing_within_a_process() -> None:
    ids = JobIdGenerator()
    stamps = [int(ids.new_id(0).split("-")[2]) for _ in range(2000)]
    assert stamps == sorted(set(stamps))


@pytest.mark.parametrize("priority", [-1, 1000, 10**9, True, False, 1.5, "1", None])
def test_bad_priorities_are_refused(priority: Any) -> None:
    with pytest.raises(InvalidInput, match="priority"):
        check_priority(priority)


@pytest.mark.parametrize(
    "value, message",
    [
        ("", "must not be empty"),
        ("a/b", "outside"),
        ("..", "starts with"),
        ("x" * 201, "201 characters"),
        ("has space", "outside"),
        (42, "must be a string"),
    ],
)
def test_bad_names_are_refused_with_the_reason(value: Any, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        check_name("flow name", value)


@pytest.mark.parametrize(
    "inputs, message",
    [
        ([1, 2], "must be a JSON object"),
        ({"a": {1, 2}}, r"inputs\['a'\]: value of type set"),
        ({"a": [1, math.nan]}, r"inputs\['a'\]\[1\]: float nan"),
        ({"a": {2: "x"}}, r"inputs\['a'\]: key 2 is a int"),
        ({"a": b"bytes"}, "type bytes"),
        ({"a": object()}, "type object"),
    ],
)
def test_non_json_inputs_name_the_offending_key(inputs: Any, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        make(inputs=inputs)


def test_oversized_document_is_refused_at_post() -> None:
    document = make(inputs={"blob": "x" * MAX_DOCUMENT_BYTES})
    with pytest.raises(InvalidInput, match="limit is 262144 bytes"):
        encode_job(document)


def test_stored_documents_are_validated_with_a_reason() -> None:
    good = make(inputs={"k": [1, 2.5, None]})
    job_id = good["id"]
    assert decode_job(job_id, encode_job(good)) == good
    cases: list[tuple[bytes, str]] = [
        (b"\xff\xfe", "not UTF-8"),
        (b"{not json", "not JSON"),
        (b"[1]", "JSON list"),
        (json.dumps({**good, "schema": 2}).encode(), "unknown schema version 2"),
        (json.dumps({k: v for k, v in good.items() if k != "flow"}).encode(), "missing field"),
        (json.dumps({**good, "attempts": "1"}).encode(), "'attempts' is a str"),
        (json.dumps({**good, "priority": True}).encode(), "'priority' is a bool"),
        (json.dumps({**good, "id": "job-x"}).encode(), "does not match"),
        (b"", "empty"),
    ]
    for data, reason in cases:
        with pytest.raises(DocumentError, match=reason):
            decode_job(job_id, data)


def test_updates_merge_but_never_touch_reserved_fields() -> None:
    document = make()
    merged = merge_updates(document, {"cancel": True, "declines": 2})
    assert merged["cancel"] is True and "cancel" not in document
    with pytest.raises(InvalidInput, match="reserved job fields: attempts, id"):
        merge_updates(document, {"id": "x", "attempts": 0})
    with pytest.raises(InvalidInput, match="updates"):
        merge_updates(document, {"bad": math.inf})


def test_large_outcomes_become_a_truncation_marker() -> None:
    small = {"state": "SUCCESS", "result": [1, 2]}
    assert cap_outcome(small) == small
    marker = cap_outcome({"state": "SUCCESS", "result": "x" * MAX_OUTCOME_BYTES})
    assert marker["truncated"] is True and marker["state"] == "SUCCESS"
    assert marker["size"] > marker["limit"] == MAX_OUTCOME_BYTES
    with pytest.raises(InvalidInput, match="outcome"):
        cap_outcome({"result": {1, 2}})


def test_layout_refuses_bad_roots_and_member_kinds() -> None:
    with pytest.raises(InvalidInput):
        BoardPaths("conductor")
    with pytest.raises(InvalidInput):
        BoardPaths("/conductor/")
    paths = BoardPaths("/c")
    assert paths.member("conductors", "c1") == "/c/conductors/c1"
    with pytest.raises(InvalidInput, match="area name"):
        paths.members("jobs")
    with pytest.raises(InvalidInput):
        paths.member("conductors", "../x")
