"""Settings precedence (flags > environment > config file > defaults) and clear errors."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from conductor.cli.main import build_parser
from conductor.cli.options import settings_from
from conductor.cli.parser import UsageError, secret_argument
from conductor.config import (
    FLAGGED,
    ConfigError,
    FlaggedSetting,
    Settings,
    load_settings,
    mask_url,
    prepare_db_url,
)
from conductor.testing import ConductorProcess


def test_defaults() -> None:
    settings = load_settings({}, env={})
    assert settings.root == "/conductor" and settings.max_jobs == 4
    assert settings.db.startswith("sqlite:///") and settings.db.endswith("conductor.sqlite")


def test_flags_beat_environment_beat_file_beat_defaults(tmp_path: Path) -> None:
    config = tmp_path / "conductor.yaml"
    config.write_text("zk: file:1\nroot: /from-file\nmax-jobs: 2\nflows: [a.flows, b.yaml]\n"
                      "grace: 5\n")
    env = {"CONDUCTOR_CONFIG": str(config), "CONDUCTOR_ROOT": "/from-env",
           "CONDUCTOR_MAX_JOBS": "3"}
    settings = load_settings({"max_jobs": 9, "zk": None}, env=env)
    assert settings.max_jobs == 9  # flag
    assert settings.root == "/from-env"  # environment over file
    assert settings.zk == "file:1"  # file over default (the None flag was not given)
    assert settings.flows == ["a.flows", "b.yaml"] and settings.grace == 5.0


def test_environment_lists_are_comma_separated() -> None:
    settings = load_settings({}, env={"CONDUCTOR_FLOWS": "a.flows, b.yaml,"})
    assert settings.flows == ["a.flows", "b.yaml"]


@pytest.mark.parametrize(("text", "message"), [
    ("max_jobs: many\n", "max_jobs must be an integer, got 'many'"),
    ("colour: blue\n", "unknown setting 'colour'"),
    ("zk: [unclosed\n", "is not valid YAML"),
    ("- a\n- b\n", "must be a mapping"),
    ("max_jobs: 0\n", "max_jobs must be at least 1"),
    ("max_crashes: 0\n", "max_crashes must be at least 1"),
    ("max_declines: -1\n", "max_declines must be at least 1"),
    ("root: conductor\n", "root must be an absolute ZooKeeper path"),
    ("zk_auth: nocolon\n", "zk_auth must look like user:password"),
    ("executor: gpu\n", "executor must be threads or processes"),
])
def test_bad_config_files_name_the_problem(tmp_path: Path, text: str, message: str) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(text)
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
        load_settings({}, env={}, config_file=str(config))


def test_a_missing_config_file_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match=r"cannot read config file /nonexistent\.yaml"):
        load_settings({}, env={}, config_file="/nonexistent.yaml")


def test_bad_environment_values_name_the_variable() -> None:
    with pytest.raises(ConfigError, match="environment variable CONDUCTOR_SESSION_TIMEOUT"):
        load_settings({}, env={"CONDUCTOR_SESSION_TIMEOUT": "soon"})


def test_secrets_never_appear_in_repr_or_describe() -> None:
    settings = load_settings({"zk_auth": "me:s3cret"}, env={
        "CONDUCTOR_DB": "postgresql+psycopg://u:pw@h/db", "CONDUCTOR_HTTP_SECRET": "tok3n"})
    shown = f"{settings!r} {settings.describe()}"
    for secret in ("s3cret", "tok3n", ":pw@"):
        assert secret not in shown
    assert settings.describe()["db"] == "postgresql+psycopg://u:***@h/db"
    assert isinstance(settings, Settings)


def test_mask_url_and_prepare_db_url(tmp_path: Path) -> None:
    assert mask_url("sqlite:///x.db") == "sqlite:///x.db"
    assert mask_url("postgresql://u@h/db") == "postgresql://u@h/db"
    url = f"sqlite:///{tmp_path}/a/b/c.db"
    assert prepare_db_url(url) == url and (tmp_path / "a" / "b").is_dir()


SECRET = "123456789012345"


@pytest.mark.parametrize("text", [
    f"http_secret: {SECRET}\n",  # a number, not a string
    f"zk_auth: [{SECRET}]\n",
    f"http_secret: [{SECRET}\n",  # not valid YAML: PyYAML would quote the line
    f"http_secret: {SECRET}: x\n",
    f'http_secret: "{SECRET}\n',
])
def test_config_errors_never_show_secret_values(tmp_path: Path, text: str) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(text)
    with pytest.raises(ConfigError) as error:
        load_settings({}, env={}, config_file=str(config))
    assert SECRET not in str(error.value)
    assert "line 1" in str(error.value) or "got '***'" in str(error.value)


def test_config_errors_mask_the_db_password(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as error:
        load_settings({"db": ["postgresql://u:pw@h/db?password=s3cret"]}, env={})
    assert "s3cret" not in str(error.value) and ":pw@" not in str(error.value)


@pytest.mark.parametrize(("flags", "env", "text"), [
    ({"http_secret": ""}, {}, None),
    ({}, {"CONDUCTOR_HTTP_SECRET": ""}, None),
    ({}, {"CONDUCTOR_HTTP_SECRET": "  "}, None),
    ({}, {}, 'http_secret: ""\n'),
])
def test_an_empty_http_secret_is_refused(tmp_path: Path, flags: dict[str, str],
                                         env: dict[str, str], text: str | None) -> None:
    config = None
    if text is not None:
        config = tmp_path / "c.yaml"
        config.write_text(text)
    with pytest.raises(ConfigError, match="http_secret is empty"):
        load_settings(flags, env=env, config_file=str(config) if config else None)
    assert load_settings({}, env={}).http_secret is None  # unset: no secret, no error


@pytest.mark.parametrize(("url", "shown"), [
    ("postgresql+psycopg://u@h/db?password=s3cret&sslmode=require",
     "postgresql+psycopg://u@h/db?password=***&sslmode=require"),
    ("postgresql+psycopg://u:pw@h/db?sslmode=require&PASSWORD=s3cret&sslpassword=k3y",
     "postgresql+psycopg://u:***@h/db?sslmode=require&PASSWORD=***&sslpassword=***"),
    ("postgresql+psycopg://u:p?w/d@h/db", "postgresql+psycopg://u:***@h/db"),
    ("postgresql:///db?host=/run/pg&password=s3cret", "postgresql:///db?host=/run/pg&password=***"),
])
def test_mask_url_hides_query_string_passwords(url: str, shown: str) -> None:
    assert mask_url(url) == shown
    settings = load_settings({}, env={"CONDUCTOR_DB": url})
    assert settings.describe()["db"] == shown and "s3cret" not in repr(settings)


def test_http_secret_flag_reads_at_file(tmp_path: Path) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text(f"{SECRET}\n")
    assert secret_argument(f"@{secret_file}") == SECRET
    assert secret_argument("literal") == "literal"  # still accepted (visible in ps)
    with pytest.raises(argparse.ArgumentTypeError, match="cannot read the secret from"):
        secret_argument(f"@{tmp_path / 'missing'}")
    (tmp_path / "empty").write_text("")
    with pytest.raises(ConfigError, match="http_secret is empty"):
        load_settings({"http_secret": secret_argument(f"@{tmp_path / 'empty'}")}, env={})


def test_child_conductors_get_the_database_url_in_their_environment(tmp_path: Path) -> None:
    url = "postgresql+psycopg://u:s3cret@h/db"
    process = ConductorProcess("c1", zk="127.0.0.1:1", root="/r", db=url, log_dir=tmp_path,
                               env={"CONDUCTOR_DB": "sqlite:///other.db"})
    assert "--db" not in process.args and not any("s3cret" in arg for arg in process.args)
    assert process.env["CONDUCTOR_DB"] == url


def test_the_callback_endpoint_limits_are_settings() -> None:
    settings = load_settings({"http_max_connections": 8}, env={
        "CONDUCTOR_HTTP_REQUEST_DEADLINE": "2.5"})
    assert (settings.http_max_connections, settings.http_request_deadline) == (8, 2.5)
    with pytest.raises(ConfigError, match="http_max_connections must be at least 1"):
        load_settings({"http_max_connections": 0}, env={})


def _flag_and_env_values(setting: FlaggedSetting) -> tuple[list[str], str, object]:
    """Command-line words giving `setting`, another valid value for its environment variable,
    and the value the flag must give."""
    if setting.kind == "bool":
        return [setting.option], "false", True
    flag, env, value = {"int": ("7", "5", 7), "float": ("2.5", "3", 2.5),
                        "list[str]": ("x.flows", "env.flows", ["x.flows"])}.get(
        setting.kind, ("/flagged", "/env", "/flagged"))
    if setting.flag.choices:
        flag, env, value = setting.flag.choices[-1], setting.flag.choices[0], \
            setting.flag.choices[-1]
    return [setting.option, flag], env, value


@pytest.mark.parametrize("setting", FLAGGED, ids=lambda setting: setting.name)
def test_every_setting_declared_with_a_flag_is_a_flag_of_run_over_its_variable(
        setting: FlaggedSetting, monkeypatch: pytest.MonkeyPatch) -> None:
    words, env_value, expected = _flag_and_env_values(setting)
    monkeypatch.delenv("CONDUCTOR_CONFIG", raising=False)
    monkeypatch.setenv(f"CONDUCTOR_{setting.name.upper()}", env_value)
    args = build_parser().parse_args(["run", *words])
    assert getattr(settings_from(args), setting.name) == expected
    assert getattr(settings_from(build_parser().parse_args(["run"])), setting.name) != expected


@pytest.mark.parametrize("name", ["zk_auth", "zk_tls", "zk_ca", "zk_certfile", "zk_keyfile"])
def test_credentials_and_tls_files_have_no_flag(name: str) -> None:
    assert name in Settings.__dataclass_fields__
    assert name not in {setting.name for setting in FLAGGED}
    with pytest.raises(UsageError, match="unrecognized arguments"):
        build_parser().parse_args(["run", f"--{name.replace('_', '-')}", "x"])


def test_the_readme_settings_table_names_every_setting() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    table = readme.split("| Setting | Default | Meaning |", 1)[1].split("\n\n", 1)[0]
    named = {name for row in table.splitlines()[2:]
             for name in re.findall(r"`(\w+)`", row.split("|")[1])}
    assert named == set(Settings.__dataclass_fields__)
