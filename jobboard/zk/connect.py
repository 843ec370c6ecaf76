"""Build a started kazoo client for the board: hosts, session timeout, digest auth, ACLs, TLS.

With credentials ("user:password") the client authenticates with the digest scheme and its
`default_acl` grants everything to that user only: every node the board creates carries it, so a
client without the credentials can neither read, post nor claim. Secrets never appear in a repr
or in logs: kazoo logs auth packets, and every create or multi-op with its ACL, at DEBUG level; a
filter redacts the password and the digest ids ("user:base64(sha1(user:password))", crackable
offline).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any

from kazoo.client import KazooClient
from kazoo.protocol.serialization import Auth
from kazoo.retry import KazooRetry
from kazoo.security import ACL, make_digest_acl

from jobboard.errors import BoardUnavailable, InvalidInput
from jobboard.zk import lease
from jobboard.zk.handler import PollingHandler

KAZOO_LOGGER = "jobboard.kazoo"


@dataclass(frozen=True)
class TLSOptions:
    """TLS settings passed through to kazoo (see KazooClient's use_ssl and friends)."""

    ca: str | None = None
    certfile: str | None = None
    keyfile: str | None = None
    keyfile_password: str | None = field(default=None, repr=False)
    verify_certs: bool = True
    check_hostname: bool = False


# `Id(scheme='digest', id='user:hash')` as kazoo's reprs of ACLs print it (either quote).
_DIGEST_ID = re.compile(r"""(scheme=['"]digest['"],\s*id=)(['"])([^'":]*:)?[^'"]*\2""")


def redact_digest_ids(text: str) -> str:
    """`text` with the hash of every digest id replaced by <redacted> (the user stays)."""
    return _DIGEST_ID.sub(lambda m: f"{m[1]}{m[2]}{m[3] or ''}<redacted>{m[2]}", text)


class _RedactAuth(logging.Filter):
    """Drop the credentials of kazoo's auth packets and the hashes of digest ACL ids (logged
    with every create, multi-op and ACL read) from log records."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and any(isinstance(arg, Auth) for arg in args):
            record.args = tuple(
                Auth(arg.auth_type, arg.scheme, "<redacted>") if isinstance(arg, Auth) else arg
                for arg in args
            )
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: logging reports it later
            return True
        if "digest" in message:
            redacted = redact_digest_ids(message)
            if redacted != message:
                record.msg, record.args = redacted, ()
        return True


def redact_logger(logger: logging.Logger) -> logging.Logger:
    """Install the redacting filter on `logger` (a kazoo client's logger) once."""
    if not any(isinstance(f, _RedactAuth) for f in logger.filters):
        logger.addFilter(_RedactAuth())
    return logger


def _kazoo_logger() -> logging.Logger:
    return redact_logger(logging.getLogger(KAZOO_LOGGER))


def digest_acl(credentials: str) -> list[ACL]:
    """All permissions for the digest user of "user:password", nothing for anyone else."""
    user, password = _split_credentials(credentials)
    return [make_digest_acl(user, password, all=True)]


def _split_credentials(credentials: str) -> tuple[str, str]:
    user, sep, password = credentials.partition(":")
    if not sep or not user or not password:
        raise InvalidInput("credentials must look like user:password (both non-empty)")
    return user, password


def make_client(
    hosts: str,
    *,
    session_timeout: float = 10.0,
    credentials: str | None = None,
    tls: TLSOptions | None = None,
    **kazoo_kwargs: Any,
) -> KazooClient:
    """A configured, not yet started client (with persistent-watch support installed).
    Any `tls` turns TLS on; with no `ca` the system's trusted CAs verify the server."""
    use_ssl = tls is not None
    tls = tls or TLSOptions()
    options: dict[str, Any] = {
        "hosts": hosts,
        "timeout": session_timeout,
        "handler": PollingHandler(),
        "logger": _kazoo_logger(),
        "connection_retry": KazooRetry(max_tries=-1, max_delay=1.0),
        "command_retry": KazooRetry(max_tries=-1, max_delay=1.0, deadline=session_timeout * 2),
        "use_ssl": use_ssl,
        "ca": tls.ca,
        "certfile": tls.certfile,
        "keyfile": tls.keyfile,
        "keyfile_password": tls.keyfile_password,
        "verify_certs": tls.verify_certs,
        "check_hostname": tls.check_hostname,
    }
    if credentials is not None:
        _split_credentials(credentials)
        options["auth_data"] = [("digest", credentials)]
        options["default_acl"] = digest_acl(credentials)
    options.update(kazoo_kwargs)
    client = KazooClient(**options)
    lease.install(client)
    return client


def connect(
    hosts: str,
    *,
    session_timeout: float = 10.0,
    credentials: str | None = None,
    tls: TLSOptions | None = None,
    start_timeout: float = 30.0,
    **kazoo_kwargs: Any,
) -> KazooClient:
    """A started client (see make_client); BoardUnavailable if not connected in time."""
    client = make_client(
        hosts, session_timeout=session_timeout, credentials=credentials, tls=tls, **kazoo_kwargs
    )
    try:
        client.start(timeout=start_timeout)
    except Exception as error:
        client.close()
        raise BoardUnavailable(
            f"could not connect to ZooKeeper at {hosts} within {start_timeout:g} s: {error}"
        ) from None
    return client
