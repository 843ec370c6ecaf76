"""The CLI's option groups, built from the settings table of `conductor.config`, and the
Settings a parsed command line gives.

A setting declared with a Flag in `conductor.config.Settings` gets its flag on every command
that takes its group: adding a setting there gives its flag, its environment variable and its
config-file key at once.
"""

from __future__ import annotations

import argparse
from typing import Any

from conductor.cli.parser import secret_argument
from conductor.config import FLAGGED, FlaggedSetting, FlagGroup, Settings, load_settings

GROUP_TITLES: dict[FlagGroup, str | None] = {
    "daemon": None,  # the command's own options
    "http": "HTTP callbacks",
    "policy": "failure policy",
    "board": "job board (ZooKeeper)",
    "database": "database",
}


def add_board_options(parser: argparse.ArgumentParser) -> None:
    """Options to reach the job board (ZooKeeper)."""
    add_setting_group(parser, "board")
    add_common_options(parser)


def add_db_options(parser: argparse.ArgumentParser) -> None:
    """Options to reach the execution database."""
    add_setting_group(parser, "database")
    add_common_options(parser)


def add_http_options(parser: argparse.ArgumentParser) -> None:
    """The callback endpoint's options (`conductor serve` and `conductor run`)."""
    add_setting_group(parser, "http")


def add_common_options(parser: argparse.ArgumentParser) -> None:
    if _has_option(parser, "--config"):
        return
    parser.add_argument("--config", metavar="FILE", help="YAML config file (or CONDUCTOR_CONFIG)")
    parser.add_argument("--json", action="store_true", help="print one JSON document")


def add_setting_group(parser: argparse.ArgumentParser, group: FlagGroup) -> None:
    """The flags of every setting of `group` the parser lacks, under the group's title."""
    title = GROUP_TITLES[group]
    container = parser if title is None else parser.add_argument_group(title)
    for setting in FLAGGED:
        if setting.flag.group == group and not _has_option(parser, setting.option):
            _add_flag(container, setting)


def add_setting_options(parser: argparse.ArgumentParser, *names: str) -> None:
    """The flags of these settings (of any group), among the command's own options."""
    by_name = {setting.name: setting for setting in FLAGGED}
    for name in names:
        if not _has_option(parser, by_name[name].option):
            _add_flag(parser, by_name[name])


def set_json_help(parser: argparse.ArgumentParser, text: str) -> None:
    """Say what --json means for a command that does not print one JSON document."""
    for action in parser._actions:
        if "--json" in action.option_strings:
            action.help = text


def settings_from(args: argparse.Namespace) -> Settings:
    """The settings: the flags given on the command line over the environment, the config file
    and the defaults."""
    flags = {setting.name: getattr(args, setting.name)
             for setting in FLAGGED if hasattr(args, setting.name)}
    return load_settings(flags, config_file=getattr(args, "config", None))


def _add_flag(container: argparse._ActionsContainer, setting: FlaggedSetting) -> None:
    """A setting's flag: absent from the parsed arguments' values (None) unless given, so that
    the lower sources of the setting apply."""
    flag = setting.flag
    options: dict[str, Any] = {"dest": setting.name, "help": flag.help}
    if flag.metavar is not None:
        options["metavar"] = flag.metavar
    if flag.choices:
        options["choices"] = flag.choices
    if setting.kind == "bool":
        options.update(action="store_const", const=True)
    elif setting.kind == "list[str]":
        options["action"] = "append"
    elif setting.kind in ("int", "float"):
        options["type"] = int if setting.kind == "int" else float
    elif flag.from_file:
        options["type"] = secret_argument
    container.add_argument(setting.option, **options)


def _has_option(parser: argparse.ArgumentParser, option: str) -> bool:
    return any(option in action.option_strings for action in parser._actions)
