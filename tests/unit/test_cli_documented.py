"""Every command and option that ``--help`` shows is documented in the README or docs/.

A new user reads ``--help`` and then looks the words up: a command or flag
that appears in neither README.md nor docs/*.md is a gap this test names.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from cyberian.cli import main as cyberian
from cyberian.cli.prove import main as cyberian_prove

REPO = Path(__file__).resolve().parents[2]


def _documentation() -> str:
    texts = [(REPO / "README.md").read_text(encoding="utf-8")]
    texts += [path.read_text(encoding="utf-8") for path in sorted((REPO / "docs").glob("*.md"))]
    texts += [(REPO / "benchmarks" / "README.md").read_text(encoding="utf-8")]
    return "\n".join(texts)


def _walk(command: click.Command, path: tuple[str, ...]) -> Iterator[tuple[str, click.Command]]:
    yield " ".join(path), command
    if isinstance(command, click.Group):
        for name, sub in sorted(command.commands.items()):
            if not sub.hidden:
                yield from _walk(sub, (*path, name))


def _commands() -> list[tuple[str, click.Command]]:
    return [*_walk(cyberian, ("cyberian",)), *_walk(cyberian_prove, ("cyberian-prove",))]


def _options(command: click.Command) -> Iterator[str]:
    for parameter in command.params:
        if isinstance(parameter, click.Option) and not parameter.hidden:
            longest = max(parameter.opts + parameter.secondary_opts, key=len)
            if longest not in ("--help", "--version"):
                yield longest


DOCS = _documentation()


@pytest.mark.parametrize(("name", "command"),
                         [pytest.param(name, command, id=name) for name, command in _commands()])
def test_command_and_its_options_are_documented(name: str, command: click.Command) -> None:
    documented = name in DOCS
    assert documented, f"`{name}` is in --help but in neither README.md nor docs/"
    missing = [option for option in _options(command) if option not in DOCS]
    assert not missing, f"`{name}` options missing from README.md and docs/: {missing}"


def test_the_walk_sees_every_group_and_some_options() -> None:
    names = {name for name, _ in _commands()}
    assert {"cyberian serve", "cyberian receipt verify", "cyberian bench throughput",
            "cyberian-prove"} <= names
    assert "--verify" in set(_options(cyberian_prove))
