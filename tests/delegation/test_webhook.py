"""The HTTP callback endpoint with a real HTTP client against a real server (and a conductor in
this process): every status code, the bearer secret, the body limit, and no token in the logs;
deeply nested JSON and handler bugs answered as JSON; slow clients cut off by the request
deadline and connections beyond the cap answered 503 at once (real sockets).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from conductor.delegation import Callbacks, CallbackServer
from conductor.engine.delegated.issuing import AttemptDelegator
from jobboard.board import JobBoard
from jobboard.testing.zkserver import ZooKeeperServers
from persistence import open_store
from tests.delegation.conftest import Rig

SECRET = "s3cret-for-tests"
AUTH = {"Authorization": f"Bearer {SECRET}"}


@pytest.fixture
def server(rig: Rig) -> Iterator[CallbackServer]:
    with CallbackServer("127.0.0.1:0", rig.callbacks(), secret=SECRET, max_body=2048) as made:
        yield made


def request(server: CallbackServer, method: str, path: str, body: Any = None,
            headers: dict[str, str] | None = None, raw: bytes | None = None
            ) -> tuple[int, dict[str, Any], http.client.HTTPResponse]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    connection.request(method, path, body=data, headers={**AUTH, **(headers or {})})
    response = connection.getresponse()
    payload = json.loads(response.read() or b"null")
    connection.close()
    return response.status, payload, response


def test_a_callback_completes_the_delegation_and_wakes_the_job(
        rig: Rig, server: CallbackServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    rig.conductor("c1", callback_url=server.url)
    job = rig.post_approval()
    token = rig.token(job)
    entry = rig.entries(job)[0]
    assert entry["url"] == f"{server.url}/v1/callbacks/{token}"
    rig.wait_parked(job)
    status, body, _ = request(server, "POST", f"/v1/callbacks/{token}",
                              {"result": {"approved": True}})
    assert status == 200, body
    assert body == {"status": "completed", "job": job, "execution": body["execution"],
                    "task": "request", "attempt": 1, "outcome": "result", "job_state": "woken"}
    outcome = rig.outcome(job).outcome
    assert outcome is not None and outcome["result"]["decision"] == {"approved": True}
    status, body, _ = request(server, "POST", f"/v1/callbacks/{token}", {"result": 2})
    assert status == 409 and "already completed" in body["error"]
    assert token not in caplog.text
    assert "/v1/callbacks/zkc_<redacted>" in caplog.text


def test_every_error_is_json_with_the_right_status(rig: Rig, server: CallbackServer) -> None:
    unknown = "/v1/callbacks/zkc_" + "Q" * 43
    assert request(server, "POST", unknown, {"result": 1})[:2] == \
        (404, {"error": "unknown token"})
    assert request(server, "POST", "/v1/callbacks/not-a-token", {"result": 1})[0] == 404
    status, body, response = request(server, "GET", unknown)
    assert (status, response.getheader("Allow")) == (405, "POST") and "POST" in body["error"]
    assert request(server, "PUT", unknown, {"result": 1})[0] == 405
    assert request(server, "POST", "/v2/elsewhere", {"result": 1})[0] == 404
    status, body, _ = request(server, "POST", unknown, raw=b"{not json")
    assert status == 400 and "not JSON" in body["error"]
    for wrong in ({}, {"result": 1, "error": "x"}, [1], {"answer": 1}, {"error": 5}):
        status, body, _ = request(server, "POST", unknown, wrong)
        assert status == 400, (wrong, body)
    status, body, _ = request(server, "POST", unknown, raw=b"x" * 4096)
    assert status == 413 and "limit is 2048" in body["error"]
    assert request(server, "GET", "/v1/health")[:2] == (200, {"status": "ok"})


def test_without_the_bearer_secret_nothing_is_done(rig: Rig, server: CallbackServer) -> None:
    created = rig.store.create_execution("job-999-0000000000001-00000002", "f", "1", {})
    rig.store.take_over(created.id, 1, "me")
    token = AttemptDelegator(rig.store, created.id, 1, task="ask", attempt=1).delegate(
        None, "fail").token
    path = f"/v1/callbacks/{token}"
    for headers in ({"Authorization": ""}, {"Authorization": "Bearer wrong"},
                    {"Authorization": f"Basic {SECRET}"}):
        status, _, response = request(server, "POST", path, {"result": 1}, headers)
        assert status == 401 and response.getheader("WWW-Authenticate", "").startswith("Bearer")
    assert rig.store.delegations(created.id)[0].completed_at is None


def test_a_request_without_a_length_is_refused(rig: Rig, server: CallbackServer) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(b"POST /v1/callbacks/zkc_x HTTP/1.1\r\nHost: x\r\n"
                     b"Authorization: Bearer " + SECRET.encode() + b"\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
        reply = sock.makefile("rb").read().decode()
    assert reply.startswith("HTTP/1.0 411") and '"error"' in reply


def test_zookeeper_down_answers_503(zk_isolated_server: ZooKeeperServers,
                                    migrated_sqlite_url: str) -> None:
    store = open_store(migrated_sqlite_url)
    board = JobBoard.connect(zk_isolated_server.connect_string, "/web", session_timeout=2,
                             op_timeout=2)
    try:
        created = store.create_execution("job-999-0000000000001-00000003", "f", "1", {})
        store.take_over(created.id, 1, "me")
        token = AttemptDelegator(store, created.id, 1, task="ask", attempt=1).delegate(
            None, "fail").token
        with CallbackServer("127.0.0.1:0", Callbacks(store, board)) as server:
            zk_isolated_server.stop()
            status, body, response = request(server, "POST", f"/v1/callbacks/{token}",
                                             {"result": 1})
            assert status == 503 and response.getheader("Retry-After") == "5", body
            assert request(server, "GET", "/v1/health")[0] == 503
        assert store.delegations(created.id)[0].completed_at is None
    finally:
        board.close()
        store.close()


def until(condition: Callable[[], bool], what: str, within: float = 10.0) -> None:
    """Wait for `condition`, failing after `within` seconds."""
    deadline = time.monotonic() + within
    pause = threading.Event()
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        pause.wait(0.01)


def read_reply(sock: socket.socket, within: float = 10.0) -> bytes:
    """Everything the server sends until it closes the connection."""
    sock.settimeout(within)
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def json_reply(raw: bytes) -> tuple[int, dict[str, Any]]:
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def test_deeply_nested_json_is_refused_with_a_json_400(
        rig: Rig, capfd: pytest.CaptureFixture[str]) -> None:
    with CallbackServer("127.0.0.1:0", rig.callbacks(), secret=SECRET) as made:
        nested = b"[" * 500_000  # under the 1 MiB default limit
        status, body, _ = request(made, "POST", "/v1/callbacks/zkc_" + "Q" * 43, raw=nested)
        assert status == 400 and "nested too deeply" in body["error"]
        assert request(made, "GET", "/v1/health")[0] == 200
    assert "Traceback" not in capfd.readouterr().err


class _BrokenBoard:
    def __init__(self, token: str) -> None:
        self.token = token

    @property
    def connected(self) -> bool:
        raise RuntimeError(f"a bug quoting /v1/callbacks/{self.token}")


class _BrokenCallbacks:
    def __init__(self, token: str) -> None:
        self.board = _BrokenBoard(token)


def test_an_unexpected_exception_is_a_json_500_logged_without_the_token(
        caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> None:
    caplog.set_level(logging.DEBUG)
    token = "zkc_" + "T" * 43
    broken: Any = _BrokenCallbacks(token)
    with CallbackServer("127.0.0.1:0", broken) as made:
        status, body, _ = request(made, "GET", "/v1/health")
    assert (status, body) == (500, {"error": "internal error"})
    assert "RuntimeError" in caplog.text and token not in caplog.text
    assert "Traceback" not in capfd.readouterr().err


HEAD = (b"POST /v1/callbacks/zkc_" + b"Q" * 43 + b" HTTP/1.1\r\nHost: x\r\n"
        b"Authorization: Bearer " + SECRET.encode() + b"\r\nContent-Length: 64\r\n\r\n")


@pytest.mark.parametrize("sent_at_once", [0, len(HEAD)], ids=["headers", "body"])
def test_a_client_trickling_its_request_is_cut_off_at_the_request_deadline(
        rig: Rig, sent_at_once: int) -> None:
    deadline = 1.0
    with CallbackServer("127.0.0.1:0", rig.callbacks(), secret=SECRET,
                        request_deadline=deadline) as made:
        trickle = HEAD[sent_at_once:] + b"x" * 10_000
        started = time.monotonic()
        with socket.create_connection(("127.0.0.1", made.port), timeout=10) as sock:
            sock.sendall(HEAD[:sent_at_once])
            reply = b""
            for byte in trickle:  # one byte every 50 ms: each read succeeds, never the whole
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    sock.sendall(bytes([byte]))
                sock.settimeout(0.05)
                with contextlib.suppress(TimeoutError):
                    reply = sock.recv(65536)
                    break
                assert time.monotonic() - started < 10, "never cut off"
            reply += read_reply(sock)
        elapsed = time.monotonic() - started
        assert json_reply(reply) == (408, {"error": "the request was not received within 1 s"})
        assert deadline <= elapsed < deadline + 5
        until(lambda: made.connections == 0, "the connection's thread to end")
        assert request(made, "GET", "/v1/health")[0] == 200


def test_connections_beyond_the_cap_are_answered_503_at_once(rig: Rig) -> None:
    with CallbackServer("127.0.0.1:0", rig.callbacks(), secret=SECRET,
                        max_connections=2, request_deadline=60) as made:
        idle = [socket.create_connection(("127.0.0.1", made.port), timeout=10)
                for _ in range(2)]
        try:  # accepted in order: both are counted before the next one is accepted
            with socket.create_connection(("127.0.0.1", made.port), timeout=10) as extra:
                started = time.monotonic()
                reply = read_reply(extra, within=5)
            assert time.monotonic() - started < 5
            assert reply.startswith(b"HTTP/1.0 503") and b"Retry-After: 1" in reply
            assert json_reply(reply) == (503, {"error": "too many connections; retry later"})
            assert made.connections == 2
            idle.pop().close()
            until(lambda: made.connections == 1, "the closed connection to be released")
            assert request(made, "GET", "/v1/health")[0] == 200
        finally:
            for sock in idle:
                sock.close()
        until(lambda: made.connections == 0, "every connection to be released")
