"""Every ``mv2`` command and option has help text and is documented in docs/cli.md."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from memvid_store.cli import cli

DOCS = Path(__file__).resolve().parents[2] / "docs" / "cli.md"
COMMANDS = sorted(cli.commands)


def sections() -> dict[str, str]:
    """``## mv2 NAME`` heading -> the text under it."""
    parts = re.split(r"^## mv2 (\S+)\s*$", DOCS.read_text(), flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_core_commands_exist() -> None:
    assert {"create", "put", "get", "timeline", "history", "stats", "verify",
            "compact"} <= set(COMMANDS)


def test_no_section_for_a_missing_command() -> None:
    assert sorted(sections()) == COMMANDS


@pytest.mark.parametrize("name", COMMANDS)
def test_command_has_help(name: str) -> None:
    command = cli.commands[name]
    assert command.help and command.help.strip()
    for param in command.params:
        if isinstance(param, click.Option):
            assert param.help, f"{name} {param.opts} has no help text"


@pytest.mark.parametrize("name", COMMANDS)
def test_command_is_documented(name: str) -> None:
    section = sections().get(name)
    assert section is not None, f"docs/cli.md has no '## mv2 {name}' section"
    assert f"$ mv2 {name} " in section, f"the {name} section has no example"
    for param in cli.commands[name].params:
        if isinstance(param, click.Option):
            option = max(param.opts, key=len)
            assert f"`{option}" in section, f"{name} {option} is not documented"
