"""A task that fails while handing out its callback URL: the saved failure (message and
traceback, of the attempt and of the execution) holds neither its token nor its URL."""

from __future__ import annotations

import pytest

from conductor.engine import AttemptFailure, FakeClock, RunState, run_flow
from conductor.engine.delegated import tokens
from conductor.flow import TaskContext, linear, task
from persistence import ExecutionStore, MemoryStore, open_store
from persistence.records import Failure

BASE = "https://callbacks.example.com"


@pytest.fixture(params=["sqlite", "memory"])
def store(request: pytest.FixtureRequest) -> ExecutionStore:
    if request.param == "memory":
        return MemoryStore()
    made = open_store(request.getfixturevalue("migrated_sqlite_url"))
    request.addfinalizer(made.close)
    return made


class HTTPClientError(Exception):
    """What an HTTP client raises: it quotes the URL it was posting."""


def test_a_failure_quoting_the_callback_url_is_saved_without_the_token(
        store: ExecutionStore) -> None:
    handed: list[tuple[str, str]] = []

    @task(name="notify")
    def notify(context: TaskContext) -> None:
        handle = context.delegate()
        assert handle.url is not None
        handed.append((handle.token, handle.url))
        try:
            raise OSError(f"connection reset while sending token {handle.token}")
        except OSError as cause:  # the cause's message is in the traceback only
            raise HTTPClientError(f"POST {BASE}/hooks?next={handle.url} failed") from cause

    result = run_flow(linear(notify), store=store, job_id="job-redact", clock=FakeClock(),
                      callback_url=BASE)
    assert result.state is RunState.REVERTED and result.failure is not None
    [(token, url)] = handed
    saved = store.load(result.execution_id)
    failures = [result.failure, saved.failure, saved.atoms["notify"].failure]
    for failure in failures:
        assert failure is not None
        text = repr(failure.to_json())
        assert token not in text and url not in text, text
        assert f"{BASE}/v1/callbacks/zkc_<redacted>" in failure.message
        assert "HTTPClientError" in failure.traceback
        assert "connection reset while sending token zkc_<redacted>" in failure.traceback


def test_an_attempt_failure_is_redacted_however_it_is_built() -> None:
    token, _ = tokens.new_token()
    built = AttemptFailure(Failure("X", f"quoting {token}", f"Traceback: {token}\n"))
    assert token not in repr(built.failure.to_json())
    plain = Failure("X", "nothing secret", "")
    assert AttemptFailure(plain).failure is plain
