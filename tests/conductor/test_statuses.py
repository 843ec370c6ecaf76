"""Which error ends a CLI command with which exit status, message and JSON kind (pure: no
ZooKeeper, no database); a bug is not swallowed."""

from __future__ import annotations

import argparse
import json

import pytest

from conductor.cli.main import run_handler
from conductor.cli.statuses import CommandError, failure_for
from conductor.config import ConfigError
from jobboard.errors import (
    AclMismatch,
    BoardUnavailable,
    InvalidInput,
    JobNotFound,
    NotAuthorized,
    ZooKeeperTooOld,
)
from persistence.errors import Fenced, SchemaOutdated, StoreUnavailable


@pytest.mark.parametrize(("error", "status", "kind", "message"), [
    (CommandError("no flows"), 1, "failed", "no flows"),
    (CommandError("gave up", 2, "timeout"), 2, "timeout", "gave up"),
    (ConfigError("max_jobs must be at least 1"), 2, "usage",
     "configuration: max_jobs must be at least 1"),
    (BoardUnavailable("zk down"), 3, "unavailable", "zk down"),
    (StoreUnavailable("db down"), 3, "unavailable", "db down"),
    (SchemaOutdated("run conductor db upgrade"), 1, "failed", "run conductor db upgrade"),
    (NotAuthorized("/conductor/jobs"), 1, "failed", "not authorized: /conductor/jobs"),
    (AclMismatch("/conductor", "world", "digest"), 1, "failed", "--repair-acls"),
    (InvalidInput("bad priority"), 1, "failed", "bad priority"),
    (JobNotFound("job-1"), 1, "failed", "job-1"),
    (ZooKeeperTooOld("3.4"), 1, "failed", "3.4"),
    (Fenced("e", 1, 2), 1, "failed", "e"),
    (KeyboardInterrupt(), 130, "interrupted", "interrupted"),
])
def test_each_expected_error_has_its_status_and_kind(
        error: BaseException, status: int, kind: str, message: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    def handler(_args: argparse.Namespace) -> int:
        raise error

    assert run_handler(handler, argparse.Namespace(json=True)) == status
    document = json.loads(capsys.readouterr().err)
    assert (document["status"], document["kind"]) == (status, kind)
    assert message in document["error"]
    assert run_handler(handler, argparse.Namespace(json=False)) == status
    assert capsys.readouterr().err.startswith("conductor: error: ")


def test_a_bug_is_not_turned_into_an_exit_status() -> None:
    def handler(_args: argparse.Namespace) -> int:
        raise KeyError("a bug")

    assert failure_for(KeyError("a bug")) is None
    with pytest.raises(KeyError, match="a bug"):
        run_handler(handler, argparse.Namespace(json=True))
