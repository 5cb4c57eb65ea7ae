"""``cyberian spec``: pin a spec's file hashes, print its spec_hash."""

from __future__ import annotations

from pathlib import Path

import click

from ._common import CyberianGroup

__all__ = ["group"]


@click.group("spec", cls=CyberianGroup)
def group() -> None:
    """Work with CES spec files."""


@group.command("pin")
@click.argument("spec_file", metavar="SPEC", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--check", is_flag=True, help="Only report; exit 1 if a pin is missing or stale.")
def pin(spec_file: Path, check: bool) -> None:
    """Fill in the SHA-256 of SPEC's model and tokenizer files (bring your own model).

    Comments and layout are kept; only the two sha256 values (and a missing
    runtime.version, set to the installed ONNX Runtime) are written.
    """
    from ..pinning import pin_spec_text  # noqa: PLC0415
    from ..spec import parse_spec  # noqa: PLC0415

    try:
        text = spec_file.read_text(encoding="utf-8")
    except OSError as exc:
        raise click.BadParameter(f"cannot read {spec_file}: {exc.strerror}") from None
    result = pin_spec_text(text, base_dir=spec_file.resolve().parent)
    for change in result.changes:
        click.echo(change)
    if check:
        if result.changes:
            raise SystemExit(1)
        click.echo("pins are current")
        return
    if result.text != text:
        spec_file.write_text(result.text, encoding="utf-8")
    spec = parse_spec(result.text, base_dir=spec_file.resolve().parent)
    click.echo(f"spec_hash {spec.spec_hash}")


@group.command("hash")
@click.argument("spec_file", metavar="SPEC", type=click.Path(dir_okay=False, path_type=Path))
def spec_hash(spec_file: Path) -> None:
    """Validate SPEC and print its spec_hash."""
    from ..spec import load_spec  # noqa: PLC0415

    click.echo(load_spec(spec_file).spec_hash)
