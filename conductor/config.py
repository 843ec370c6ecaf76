"""Conductor settings from defaults, a YAML config file, environment variables and flags.

Precedence, highest first: command-line flags, environment variables (CONDUCTOR_<NAME>), the YAML
config file (--config or CONDUCTOR_CONFIG), built-in defaults. Every setting has one name used in
all four places: `max_jobs` is `--max-jobs`, `CONDUCTOR_MAX_JOBS` and `max_jobs:` in the file.
"""

from __future__ import annotations

import dataclasses
import os
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ENV_PREFIX = "CONDUCTOR_"


class ConfigError(ValueError):
    """A setting is unknown or has a bad value; the message names the setting and its source."""


def default_db_url() -> str:
    """SQLite file under the user's data directory (shared by conductors on this machine)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return f"sqlite:///{Path(base) / 'zkconductor' / 'conductor.sqlite'}"


def prepare_db_url(url: str) -> str:
    """Create the parent directory of a SQLite file URL (SQLite will not); return the URL."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + ":memory:"):
        path = Path(url[len(prefix):].split("?", 1)[0])
        if str(path):
            path.parent.mkdir(parents=True, exist_ok=True)
    return url


def default_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


@dataclass
class Settings:
    """Everything a conductor process (or a CLI command) needs to know."""

    zk: str = "127.0.0.1:2181"
    root: str = "/conductor"
    db: str = field(default_factory=default_db_url)
    flows: list[str] = field(default_factory=list)
    name: str = field(default_factory=default_name)
    max_jobs: int = 4
    session_timeout: float = 10.0
    connect_timeout: float = 15.0
    db_retry_for: float = 30.0
    grace: float = 30.0
    max_crashes: int = 3
    max_declines: int = 20
    release_backoff: float = 5.0
    zk_auth: str | None = field(default=None, repr=False)  # "user:password": a secret
    zk_tls: bool = False
    zk_repair_acls: bool = False  # put the board's ACL on existing folders lacking it
    zk_certfile: str | None = None
    zk_keyfile: str | None = None
    zk_ca: str | None = None
    http: str | None = None
    http_secret: str | None = field(default=None, repr=False)
    http_url: str | None = None
    http_max_body: int = 1024 * 1024  # bytes of a callback's JSON body
    http_max_connections: int = 64  # callback connections served at once (more: 503)
    http_request_deadline: float = 10.0  # seconds a client has to send a whole request
    log_level: str = "INFO"
    executor: str = "threads"
    workers: int = 0  # task threads/processes; 0: 16 or 4 per job, whichever is more
    task_ledger: str | None = None

    def __repr__(self) -> str:
        return f"Settings({self.describe()})"

    def describe(self) -> dict[str, Any]:
        """Settings safe to print or log: secrets replaced by '***'."""
        shown = dataclasses.asdict(self)
        for secret in SECRET_SETTINGS:
            if shown.get(secret):
                shown[secret] = "***"
        shown["db"] = mask_url(self.db)
        return shown


SECRET_SETTINGS = ("zk_auth", "http_secret")
_FIELDS = {f.name: f for f in dataclasses.fields(Settings)}


_CREDENTIALS = re.compile(r"([^:/@]*)(:[^@]*)?@")  # user[:password]@, as SQLAlchemy reads it
_QUERY_PASSWORD = re.compile(r"([?&](?:ssl)?password=)[^&#]*", re.IGNORECASE)


def mask_url(url: str) -> str:
    """The URL with any password replaced by '***': the one after `user:` and the values of
    `password=` (and libpq's `sslpassword=`) in its query string."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    credentials = _CREDENTIALS.match(rest)
    if credentials:
        user, password = credentials.groups()
        rest = rest[credentials.end():]
        scheme += f"://{user}{':***' if password is not None else ''}@"
    else:
        scheme += "://"
    place, query_sep, query = rest.partition("?")
    return scheme + place + _QUERY_PASSWORD.sub(r"\1***", query_sep + query)


def _shown(name: str, value: Any) -> str:
    """A setting's value for an error message: '***' for secrets (whatever their type)."""
    if name in SECRET_SETTINGS:
        return "'***'"
    if name == "db":  # may hold a password
        return repr(mask_url(value)) if isinstance(value, str) else f"a {type(value).__name__}"
    return repr(value)


def load_settings(
    flags: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    config_file: str | None = None,
) -> Settings:
    """Merge the sources by precedence. `flags` holds only the options given on the command line."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    path = config_file or env.get(f"{ENV_PREFIX}CONFIG")
    if path:
        values.update(_from_file(path))
    for name in _FIELDS:
        raw = env.get(ENV_PREFIX + name.upper())
        if raw is not None:
            values[name] = _coerce(name, raw, f"environment variable {ENV_PREFIX}{name.upper()}")
    for name, value in (flags or {}).items():
        if value is None:
            continue
        if name not in _FIELDS:
            raise ConfigError(f"unknown setting {name!r}")
        values[name] = _coerce(name, value, f"option --{name.replace('_', '-')}")
    settings = Settings(**values)
    _validate(settings)
    return settings


def _from_file(path: str) -> dict[str, Any]:
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {_yaml_problem(exc)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must be a mapping of setting: value")
    values = {}
    for key, value in data.items():
        name = str(key).replace("-", "_")
        if name not in _FIELDS:
            known = ", ".join(sorted(_FIELDS))
            raise ConfigError(f"config file {path}: unknown setting {key!r} (known: {known})")
        values[name] = _coerce(name, value, f"config file {path}, setting {key!r}")
    return values


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """What is wrong and where (line, column), without PyYAML's quote of the offending line:
    that line may hold a secret."""
    if not isinstance(exc, yaml.MarkedYAMLError):
        return "cannot parse it"
    parts = []
    for text, mark in ((exc.context, exc.context_mark), (exc.problem, exc.problem_mark)):
        if text:
            where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
            parts.append(f"{text}{where}")
    return "; ".join(parts) or "cannot parse it"


def _coerce(name: str, value: Any, source: str) -> Any:
    kind = _FIELDS[name].type
    try:
        if kind == "int":
            if isinstance(value, bool):
                raise ValueError
            return int(value)
        if kind == "float":
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if kind == "bool":
            if isinstance(value, bool):
                return value
            lowered = str(value).strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off", ""):
                return False
            raise ValueError
        if kind == "list[str]":
            if isinstance(value, str):
                return [part for part in (p.strip() for p in value.split(",")) if part]
            if isinstance(value, list) and all(isinstance(v, str) for v in value):
                return list(value)
            raise ValueError
    except (TypeError, ValueError):
        wanted = {"int": "an integer", "float": "a number", "bool": "true or false",
                  "list[str]": "a list of strings (or a comma-separated string)"}[str(kind)]
        raise ConfigError(f"{source}: {name} must be {wanted}, got {_shown(name, value)}") from None
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"{source}: {name} must be a string, got {_shown(name, value)}")
    return value


def _validate(settings: Settings) -> None:
    if settings.executor not in ("threads", "processes"):
        raise ConfigError(f"executor must be threads or processes, got {settings.executor!r}")
    if settings.workers < 0:
        raise ConfigError(f"workers must not be negative, got {settings.workers}")
    if settings.max_jobs < 1:
        raise ConfigError(f"max_jobs must be at least 1, got {settings.max_jobs}")
    for name in ("max_crashes", "max_declines"):
        if getattr(settings, name) < 1:
            raise ConfigError(f"{name} must be at least 1, got {getattr(settings, name)}")
    if settings.session_timeout < 1:
        raise ConfigError(
            f"session_timeout must be at least 1 second, got {settings.session_timeout}"
        )
    if settings.connect_timeout <= 0 or settings.db_retry_for < 0:
        raise ConfigError("connect_timeout must be > 0 and db_retry_for >= 0")
    if settings.http_max_body < 1:
        raise ConfigError(f"http_max_body must be at least 1 byte, got {settings.http_max_body}")
    if settings.http_max_connections < 1 or settings.http_request_deadline <= 0:
        raise ConfigError("http_max_connections must be at least 1 and http_request_deadline "
                          "above 0")
    if settings.grace < 0:
        raise ConfigError(f"grace must not be negative, got {settings.grace}")
    if not settings.root.startswith("/") or (settings.root.endswith("/") and settings.root != "/"):
        raise ConfigError(
            f"root must be an absolute ZooKeeper path like /conductor, got {settings.root!r}"
        )
    if settings.zk_auth is not None and ":" not in settings.zk_auth:
        raise ConfigError("zk_auth must look like user:password")
    if settings.http_secret is not None and not settings.http_secret.strip():
        # The endpoint would run without authentication: refuse rather than guess.
        raise ConfigError(
            "http_secret is empty: give a non-empty bearer secret, or leave http_secret unset "
            "(and CONDUCTOR_HTTP_SECRET undefined) to serve callbacks without one"
        )
