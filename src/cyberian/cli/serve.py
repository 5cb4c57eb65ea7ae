"""``cyberian serve``: run the verifier server (see docs/SERVER.md)."""

from __future__ import annotations

from pathlib import Path

import click

from ._common import CyberianCommand

__all__ = ["command"]


@click.command("serve", cls=CyberianCommand)
@click.option("--host", help="Address to listen on [default 127.0.0.1].")
@click.option("--port", type=click.IntRange(0, 65535),
              help="Port to listen on; 0 picks a free one [default 8080].")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Where the SQLite database, keys and models live [default ./data].")
@click.option("--database", metavar="URL",
              help="A postgresql:// URL: the database that replicas and workers share "
                   "[env: CYBERIAN_DATABASE; default: the SQLite file in the data dir]. Keep "
                   "the password out of the URL (PGPASSWORD or ~/.pgpass): flags are visible "
                   "to every local user.")
@click.option("--models-dir", type=click.Path(file_okay=False, path_type=Path),
              help="The model store; replicas that take model uploads share it "
                   "[default: <data-dir>/models].")
@click.option("--keys-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Folder of the private signing and log keys; replicas share it "
                   "[default: <data-dir>/keys].")
@click.option("--job-workers", type=click.Choice(["local", "remote"]),
              help="Who runs job chunks: this server's worker processes, or 'cyberian worker' "
                   "processes leasing work from the database [default local].")
@click.option("--workers", type=click.IntRange(1, 256),
              help="Executor processes [default: CPUs - 1, at least 1].")
@click.option("--queue-size", type=click.IntRange(1),
              help="Open jobs + in-flight /verify requests before 503 service_busy [default 64].")
@click.option("--config", type=click.Path(dir_okay=False, path_type=Path),
              help="Config file (YAML or JSON): tiers, limits, any setting.")
@click.option("--specs-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Folder of CES files forming the model catalog [default: shipped specs].")
@click.option("--open-registration/--no-registration", "--registration", "registration",
              default=None,
              help="Let anyone who can reach the server open a trial account with "
                   "POST /auth/register [default: off; accounts come from "
                   "'cyberian accounts create'].")
@click.option("--log-level", type=click.Choice(["critical", "error", "warning", "info", "debug"]))
@click.option("--metrics", type=click.Choice(["auto", "open", "token", "off"]),
              help="Who may read GET /metrics. auto: only with metrics_token if one is set "
                   "(CYBERIAN_METRICS_TOKEN or the config file, never a flag), else open on a "
                   "loopback bind and refused on any other [default auto].")
def command(host: str | None, port: int | None, data_dir: Path | None, database: str | None,
            models_dir: Path | None, keys_dir: Path | None, job_workers: str | None,
            workers: int | None, queue_size: int | None, config: Path | None,
            specs_dir: Path | None, registration: bool | None, log_level: str | None,
            metrics: str | None) -> None:
    """Run the verifier server until interrupted.

    Settings come from defaults, then the config file, then CYBERIAN_* environment
    variables, then these flags.
    """
    from ..server.config import load_settings  # noqa: PLC0415
    from ..server.http.runner import serve  # noqa: PLC0415

    settings = load_settings(config, host=host, port=port, data_dir=data_dir,
                             database=database, models_dir=models_dir, keys_dir=keys_dir,
                             job_workers=job_workers,
                             workers=workers,
                             queue_size=queue_size, specs_dir=specs_dir,
                             registration_enabled=registration, log_level=log_level,
                             metrics=metrics)
    serve(settings)
