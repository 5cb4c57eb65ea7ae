"""What the server admin commands share: the data-dir options and opening its store.

Admin commands work on the server's SQLite database directly; that is safe
while the server runs (WAL mode, short transactions, a busy timeout).
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
    """Add ``--data-dir`` and ``--config`` (environment: CYBERIAN_DATA_DIR, CYBERIAN_CONFIG)."""
    command = click.option(
        "--config", "config", type=click.Path(dir_okay=False, path_type=Path),
        help="Server config file (YAML or JSON) for tiers and limits [env: CYBERIAN_CONFIG].",
    )(command)
    return click.option(
        "--data-dir", "data_dir", type=click.Path(file_okay=False, path_type=Path),
        help="The server's data dir [env: CYBERIAN_DATA_DIR; default ./data].",
    )(command)


def open_store(data_dir: Path | None, config: Path | None) -> tuple[Settings, Store]:
    """The settings and the (migrated) store of a data dir."""
    from ..server.config import load_settings  # noqa: PLC0415
    from ..server.store import Store  # noqa: PLC0415

    settings = load_settings(config, data_dir=data_dir)
    return settings, Store(settings.db_path)
