"""What the server admin commands share: the data-dir options and opening its store.

Admin commands work on the server's database directly (the SQLite file in the
data dir, or the ``database`` URL of the config); that is safe while the
server runs (short transactions; WAL mode and a busy timeout on SQLite).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from ..server.config import Settings
    from ..server.store import Store

__all__ = ["data_dir_options", "open_store"]

_F = TypeVar("_F", bound=Callable[..., Any])


def data_dir_options(command: _F) -> _F:
    """Add ``--data-dir``, ``--database`` and ``--config`` (environment: CYBERIAN_DATA_DIR,
    CYBERIAN_DATABASE, CYBERIAN_CONFIG)."""
    command = click.option(
        "--database", "database", metavar="URL",
        help="The server's postgresql:// database, when it has one [env: CYBERIAN_DATABASE].",
    )(command)
    command = click.option(
        "--config", "config", type=click.Path(dir_okay=False, path_type=Path),
        help="Server config file (YAML or JSON) for tiers and limits [env: CYBERIAN_CONFIG].",
    )(command)
    return click.option(
        "--data-dir", "data_dir", type=click.Path(file_okay=False, path_type=Path),
        help="The server's data dir [env: CYBERIAN_DATA_DIR; default ./data].",
    )(command)


def open_store(data_dir: Path | None, config: Path | None,
               database: str | None = None) -> tuple[Settings, Store]:
    """The settings and the (migrated) store of a data dir (or of a ``database`` URL)."""
    from ..server.config import load_settings  # noqa: PLC0415
    from ..server.store import open_store as open_database  # noqa: PLC0415

    settings = load_settings(config, data_dir=data_dir, database=database)
    return settings, open_database(settings.store_location)
