"""Conductor settings from defaults, a YAML config file, environment variables and flags.

Precedence, highest first: command-line flags, environment variables (CONDUCTOR_<NAME>), the YAML
config file (--config or CONDUCTOR_CONFIG), built-in defaults. Every setting has one name used in
all four places: `max_jobs` is `--max-jobs`, `CONDUCTOR_MAX_JOBS` and `max_jobs:` in the file.

`Settings` is the one place a setting is declared: its field gives the config-file key and the
environment variable, and its `Flag` (in the field's metadata) the command-line flag, its help
and the option group of the commands that take it (`FLAGGED`, which the CLI builds its parsers
from). A setting without a Flag (credentials, TLS files) has no flag.
"""

from __future__ import annotations

import dataclasses
import os
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

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


FlagGroup = Literal["daemon", "http", "policy", "board", "database"]
"""The option groups of the CLI: `run` takes them all; every command that reaches ZooKeeper
takes "board", every one that reaches the database "database", `serve` "http"."""

EXECUTORS = ("threads", "processes")


@dataclass(frozen=True)
class Flag:
    """How a setting is given on the command line.

    `option` is the flag (default: `--` and the setting's name with dashes); `choices`, when
    set, are the only values the flag accepts; with `from_file`, `@FILE` stands for the first
    line of FILE (a secret kept out of process listings). The flag's type follows the setting's:
    a number is parsed as one, a list is given by repeating the flag, a bool is a switch that
    sets it true."""

    group: FlagGroup
    help: str
    metavar: str | None = None
    option: str | None = None
    choices: tuple[str, ...] = ()
    from_file: bool = False


def _flag(group: FlagGroup, help: str, metavar: str | None = None, **more: Any
          ) -> dict[str, Flag]:
    """A field's metadata declaring its flag."""
    return {"flag": Flag(group, help, metavar, **more)}


@dataclass
class Settings:
    """Everything a conductor process (or a CLI command) needs to know. The order of the fields
    is the order of the flags in each option group of --help."""

    # the conductor daemon (`conductor run`)
    flows: list[str] = field(default_factory=list, metadata=_flag(
        "daemon", "Python module, .py file or YAML workbook of flows (repeatable)",
        "MODULE|FILE"))
    name: str = field(default_factory=default_name, metadata=_flag(
        "daemon", "conductor id, unique among live conductors (default: host-pid)"))
    max_jobs: int = field(default=4, metadata=_flag(
        "daemon", "jobs run at once (default 4)", "N"))
    grace: float = field(default=30.0, metadata=_flag(
        "daemon", "seconds tasks in flight may finish after SIGTERM (default 30)", "S"))
    log_level: str = field(default="INFO", metadata=_flag(
        "daemon", "DEBUG, INFO (default), WARNING", "LEVEL"))
    executor: str = field(default="threads", metadata=_flag(
        "daemon", "where task attempts run (default threads)", choices=EXECUTORS))
    workers: int = field(default=0, metadata=_flag(  # 0: 16 or 4 per job, whichever is more
        "daemon", "task threads (default max(16, 4 x max-jobs)) or processes (default: the "
        "CPU count)", "N"))
    task_ledger: str | None = field(default=None, metadata=_flag(
        "daemon", "append one JSON line per task attempt started (audit, chaos checks)",
        "FILE"))
    # the HTTP callback endpoint
    http: str | None = field(default=None, metadata=_flag(
        "http", "serve task callbacks on HOST:PORT", "ADDR"))
    http_url: str | None = field(default=None, metadata=_flag(
        "http", "public base URL of the endpoint, given to third parties with each token "
        "(default http://HOST:PORT when HOST is not a wildcard)", "URL"))
    http_secret: str | None = field(default=None, repr=False, metadata=_flag(
        "http", "require 'Authorization: Bearer SECRET', the SECRET read from the first line "
        "of FILE; safe alternatives: CONDUCTOR_HTTP_SECRET or http_secret in the config file. "
        "A literal SECRET is still accepted but shows in process listings (ps); it must not "
        "be empty", "@FILE", from_file=True))
    http_max_body: int = field(default=1024 * 1024, metadata=_flag(  # bytes of a JSON body
        "http", "largest callback body accepted (default 1 MiB)", "BYTES"))
    http_max_connections: int = field(default=64, metadata=_flag(  # more: answered 503
        "http", "connections served at once; more are answered 503 (default 64)", "N"))
    http_request_deadline: float = field(default=10.0, metadata=_flag(
        "http", "seconds a client has to send its whole request, else 408 (default 10)", "S"))
    # failure policy
    max_crashes: int = field(default=3, metadata=_flag(
        "policy", "owners in a row that may die holding a job without progress before it is "
        "dead-lettered (default 3)", "K"))
    max_declines: int = field(default=20, metadata=_flag(
        "policy", "declines (by conductors lacking the job's flow, or unable to send its tasks "
        "to processes) after which it is dead-lettered: the K-th decline trashes it (default "
        "20)", "K"))
    release_backoff: float = field(default=5.0, metadata=_flag(
        "policy", "first delay before this conductor retries a job it gave back (doubles each "
        "time; default 5)", "S"))
    db_retry_for: float = field(default=30.0, metadata=_flag(
        "policy", "seconds database errors are retried before the job is given back (default "
        "30)", "S"))
    # the job board (ZooKeeper)
    zk: str = field(default="127.0.0.1:2181", metadata=_flag(
        "board", "ZooKeeper hosts, e.g. zk1:2181,zk2:2181", "HOSTS"))
    root: str = field(default="/conductor", metadata=_flag(
        "board", "board root znode (default /conductor)", "PATH"))
    session_timeout: float = field(default=10.0, metadata=_flag(
        "board", "ZooKeeper session timeout (s)", "S"))
    connect_timeout: float = field(default=15.0, metadata=_flag(
        "board", "give up connecting to ZooKeeper after S seconds (default 15)", "S"))
    zk_repair_acls: bool = field(default=False, metadata=_flag(
        "board", "with zk_auth: put the board's ACL on existing board folders that lack it (and "
        "every node below them), instead of refusing to start", option="--repair-acls"))
    zk_auth: str | None = field(default=None, repr=False)  # "user:password": a secret
    zk_tls: bool = False
    zk_certfile: str | None = None
    zk_keyfile: str | None = None
    zk_ca: str | None = None
    # the execution database
    db: str = field(default_factory=default_db_url, metadata=_flag(
        "database", "sqlite:///path or postgresql+psycopg://... (a URL with a password shows "
        "in process listings: prefer CONDUCTOR_DB or the config file)", "URL"))

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


@dataclass(frozen=True)
class FlaggedSetting:
    """A setting the command line can give: `name` is also the parsed argument's name,
    `kind` its type ("str", "int", "float", "bool" or "list[str]")."""

    name: str
    kind: str
    flag: Flag

    @property
    def option(self) -> str:
        return self.flag.option or "--" + self.name.replace("_", "-")


FLAGGED = tuple(
    FlaggedSetting(f.name, str(f.type).removesuffix(" | None"), f.metadata["flag"])
    for f in _FIELDS.values() if "flag" in f.metadata)
"""Every setting with a flag, in the order of the fields."""
_OPTIONS = {setting.name: setting.option for setting in FLAGGED}


def _option(name: str) -> str:
    """The flag of a setting, as error messages name it."""
    return _OPTIONS.get(name) or f"--{name.replace('_', '-')}"


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
        values[name] = _coerce(name, value, f"option {_option(name)}")
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
    if settings.executor not in EXECUTORS:
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
