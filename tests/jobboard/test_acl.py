"""Digest auth + ACLs: a client without the board's credentials can neither read, post nor claim."""

from __future__ import annotations

import logging

import pytest
from kazoo.exceptions import NoAuthError

from jobboard.board import JobBoard
from jobboard.connect import KAZOO_LOGGER, TLSOptions, make_client
from jobboard.errors import NotAuthorized
from tests.fixtures.zookeeper import ZkClientFactory
from tests.jobboard.conftest import BoardFactory

CREDENTIALS = "conductor:s3cret-pw"


def test_board_nodes_are_closed_to_clients_without_credentials(
    make_board: BoardFactory, zk_client_factory: ZkClientFactory, zk_root: str
) -> None:
    secured = make_board(credentials=CREDENTIALS)
    job = secured.post("n", "f", {"secret": 1})
    assert secured.get(job.id).state.value == "UNCLAIMED"

    raw = zk_client_factory()
    for path in (secured.paths.jobs, secured.paths.job(job.id), zk_root):
        with pytest.raises(NoAuthError):
            raw.get(path)

    outsider = JobBoard(zk_client_factory(), zk_root)  # existing folders: no ensure needed
    with pytest.raises(NotAuthorized, match="get"):
        outsider.get(job.id)
    with pytest.raises(NotAuthorized, match="post"):
        outsider.post("n", "f", {})
    with pytest.raises(NotAuthorized, match="claim"):
        outsider.claim(job.id, "thief")
    with pytest.raises(NotAuthorized):
        outsider.jobs()
    outsider.close()

    wrong = make_board(credentials="conductor:wrong")
    with pytest.raises(NotAuthorized):
        wrong.claim(job.id, "thief")
    claim = secured.claim(job.id, "owner")
    secured.complete(claim, {"state": "SUCCESS"})


def test_secrets_stay_out_of_reprs_and_logs(
    zk_server: object, caplog: pytest.LogCaptureFixture, make_board: BoardFactory
) -> None:
    tls = TLSOptions(keyfile_password="key-pass-123")
    assert "key-pass-123" not in repr(tls)
    with caplog.at_level(logging.DEBUG), caplog.at_level(logging.DEBUG, logger=KAZOO_LOGGER):
        make_board(credentials=CREDENTIALS).post("n", "f", {})
    assert "s3cret-pw" not in caplog.text
    assert "redacted" in caplog.text, "the auth packet was logged, redacted"


def test_tls_options_reach_kazoo() -> None:
    tls = TLSOptions(ca="/ca.pem", certfile="/c.pem", keyfile="/k.pem", verify_certs=False)
    client = make_client("127.0.0.1:1", tls=tls)
    assert client.use_ssl is True and client.ca == "/ca.pem"
    assert client.certfile == "/c.pem" and client.keyfile == "/k.pem"
    assert client.verify_certs is False
    client.close()
