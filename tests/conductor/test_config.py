"""Settings precedence (flags > environment > config file > defaults) and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from conductor.config import ConfigError, Settings, load_settings, mask_url, prepare_db_url


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
