"""The ``cyberian`` command: models, specs, keys, receipts, the log, the server, benchmarks.

``cyberian-prove`` lives in :mod:`cyberian.cli.prove`. Each command group is
its own module; heavy imports happen inside the commands, so ``--help`` is
fast.
"""

from __future__ import annotations

import click

from .._version import __version__
from ._common import CyberianGroup

__all__ = ["main"]


@click.group(cls=CyberianGroup)
@click.version_option(__version__, prog_name="cyberian")
def main() -> None:
    """Self-hosted verified inference: build models, pin specs, sign and verify receipts,
    run the verifier server and its remote workers."""


def _register() -> None:
    from . import (  # noqa: PLC0415
        accounts,
        bench,
        keys,
        log,
        models,
        receipt,
        serve,
        spec,
        worker,
    )

    for group in (models.group, spec.group, keys.group, receipt.group, log.group, bench.group,
                  accounts.group):
        main.add_command(group)
    main.add_command(serve.command)
    main.add_command(worker.command)


_register()
