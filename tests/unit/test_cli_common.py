"""What every cyberian command shares: ``-h``, ``--version`` and ``fail``."""

from __future__ import annotations

import typing
from collections.abc import Iterator

import click
import pytest
from click.testing import CliRunner

from cyberian import __version__
from cyberian.cli import main
from cyberian.cli._common import fail
from cyberian.cli.prove import main as prove_main


def _command_paths(command: click.Command, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield path
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            yield from _command_paths(sub, (*path, name))


def _name(path: tuple[str, ...]) -> str:
    return " ".join(("cyberian", *path))


@pytest.mark.parametrize("path", list(_command_paths(main)), ids=_name)
def test_dash_h_is_help_for_cyberian_and_every_subcommand(path: tuple[str, ...]) -> None:
    short = CliRunner().invoke(main, [*path, "-h"])
    assert short.exit_code == 0, short.output
    assert short.output.startswith("Usage:")
    assert short.output == CliRunner().invoke(main, [*path, "--help"]).output


def test_dash_h_is_help_for_cyberian_prove() -> None:
    result = CliRunner().invoke(prove_main, ["-h"])
    assert result.exit_code == 0
    assert result.output.startswith("Usage:")


@pytest.mark.parametrize(("command", "name"), [(main, "cyberian"), (prove_main, "cyberian-prove")])
def test_version(command: click.Command, name: str) -> None:
    result = CliRunner().invoke(command, ["--version"])
    assert result.exit_code == 0
    assert result.output == f"{name}, version {__version__}\n"


def test_fail_is_typed_as_never_returning() -> None:
    assert typing.get_type_hints(fail)["return"] is typing.NoReturn


def test_fail_prints_one_line_and_exits_with_the_code(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        fail("no such thing", code=3)
    assert info.value.code == 3
    assert capsys.readouterr().err == "error: no such thing\n"
