"""Digest auth + ACLs: a client without the board's credentials can neither read, post nor claim."""

from __future__ import annotations

import logging

import pytest
from kazoo.exceptions import NoAuthError
from kazoo.security import OPEN_ACL_UNSAFE, make_digest_acl_credential

from jobboard.board import JobBoard
from jobboard.errors import AclMismatch, InvalidInput, NotAuthorized
from jobboard.zk.connect import KAZOO_LOGGER, TLSOptions, digest_acl, make_client
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

    with pytest.raises(NotAuthorized, match=f"{zk_root}: ZooKeeper refuses"):
        make_board(credentials="conductor:wrong")  # refused at start
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
    alone = make_client("127.0.0.1:1", tls=TLSOptions())  # zk_tls: true, the system's CAs
    assert alone.use_ssl is True and alone.ca is None and alone.verify_certs is True
    alone.close()
    plain = make_client("127.0.0.1:1")
    assert plain.use_ssl is False
    plain.close()


def _hash(credentials: str) -> str:
    user, _, password = credentials.partition(":")
    return make_digest_acl_credential(user, password).split(":", 1)[1]


def test_existing_open_folders_are_refused_then_repaired(
    make_board: BoardFactory, zk_client_factory: ZkClientFactory, zk_root: str
) -> None:
    # Someone without credentials created the board's folders first (or auth was turned on
    # for a board that ran open): the secured board must not run on open folders.
    open_board = make_board()
    job = open_board.post("n", "f", {})
    raw = zk_client_factory()
    raw.create(f"{zk_root}/claims/{job.id}", b"forged")
    with pytest.raises(AclMismatch) as refused:
        make_board(credentials=CREDENTIALS)
    message = str(refused.value)
    assert refused.value.path == zk_root and zk_root in message
    assert "world:anyone" in message and "repair_acls=True" in message
    assert "s3cret-pw" not in message and _hash(CREDENTIALS) not in message

    secured = make_board(credentials=CREDENTIALS, repair_acls=True)
    for path in (zk_root, secured.paths.jobs, secured.paths.job(job.id),
                 secured.paths.claim(job.id)):
        with pytest.raises(NoAuthError):
            raw.get(path)
    with pytest.raises(NoAuthError):
        raw.create(f"{secured.paths.claims}/other", b"forged")
    assert secured.get(job.id).id == job.id
    make_board(credentials=CREDENTIALS)  # repaired: starts without repair_acls


def test_one_open_area_is_named(
    make_board: BoardFactory, zk_client_factory: ZkClientFactory, zk_root: str
) -> None:
    secured = make_board(credentials=CREDENTIALS)
    admin = zk_client_factory(auth_data=[("digest", CREDENTIALS)])
    admin.set_acls(secured.paths.outcomes, OPEN_ACL_UNSAFE)
    with pytest.raises(AclMismatch, match=f"^{secured.paths.outcomes} has"):
        make_board(credentials=CREDENTIALS)
    make_board(credentials=CREDENTIALS, repair_acls=True)
    with pytest.raises(NoAuthError):
        zk_client_factory().get_children(secured.paths.outcomes)


def test_presence_folder_acl_is_checked(
    make_board: BoardFactory, zk_client_factory: ZkClientFactory, zk_root: str
) -> None:
    secured = make_board(credentials=CREDENTIALS)
    admin = zk_client_factory(auth_data=[("digest", CREDENTIALS)])
    admin.create(f"{zk_root}/conductors", b"", OPEN_ACL_UNSAFE)
    with pytest.raises(AclMismatch, match="conductors"):
        secured.register("conductors", "c1")


def test_board_acl_becomes_the_default_acl_of_a_client_without_one(
    zk_client_factory: ZkClientFactory, zk_root: str
) -> None:
    acl = digest_acl(CREDENTIALS)
    client = zk_client_factory(auth_data=[("digest", CREDENTIALS)])
    board = JobBoard(client, zk_root, acl=acl)
    try:
        assert client.default_acl == acl  # kazoo recipes (Lock) create nodes with it
        lock = client.Lock(f"{zk_root}/keeper", "me")
        assert lock.acquire(timeout=10)
        with pytest.raises(NoAuthError):
            zk_client_factory().get_children(f"{zk_root}/keeper")
        lock.release()
    finally:
        board.close()
    other = zk_client_factory(default_acl=digest_acl("someone:else"))
    with pytest.raises(InvalidInput, match="default_acl"):
        JobBoard(other, zk_root, acl=acl)


def test_digest_acl_hashes_stay_out_of_kazoo_logs(
    zk_server: object, caplog: pytest.LogCaptureFixture, make_board: BoardFactory,
    zk_client_factory: ZkClientFactory, zk_root: str
) -> None:
    hashed = _hash(CREDENTIALS)
    plain_logger = logging.getLogger("kazoo.client")
    with caplog.at_level(logging.DEBUG), caplog.at_level(logging.DEBUG, logger=KAZOO_LOGGER), \
            caplog.at_level(logging.DEBUG, logger=plain_logger.name):
        board = make_board(credentials=CREDENTIALS)  # creates its folders (Create with ACL)
        job = board.post("n", "f", {}, key="k")  # a multi-op with ACLs
        board.complete(board.claim(job.id, "me"), {"state": "SUCCESS"})
        # A client of the caller's own (kazoo's default logger) given the board's ACL.
        client = zk_client_factory(auth_data=[("digest", CREDENTIALS)])
        other = JobBoard(client, zk_root + "-other", acl=digest_acl(CREDENTIALS))
        other.post("n", "f", {})
        other.close()
    assert "scheme='digest'" in caplog.text, "kazoo logged the ACLs (redacted)"
    assert "id='conductor:<redacted>'" in caplog.text
    assert hashed not in caplog.text
    assert "s3cret-pw" not in caplog.text
