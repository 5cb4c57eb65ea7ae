"""``cyberian worker``: lease job chunks from the shared database and run them (docs/SERVER.md)."""

from __future__ import annotations

import signal
from pathlib import Path
from types import FrameType

import click

from ._common import CyberianCommand

__all__ = ["command"]


@click.command("worker", cls=CyberianCommand)
@click.option("--database", metavar="URL",
              help="The database the verifier's replicas use (a postgresql:// URL, or the "
                   "path of the SQLite file for a worker on the server's own machine) "
                   "[env: CYBERIAN_DATABASE].")
@click.option("--role", type=click.Choice(["executor", "replayer"]), required=True,
              help="executor: run job chunks; replayer: re-run the sampled chunks of other "
                   "workers.")
@click.option("--threads", type=click.IntRange(1, 256), default=1, show_default=True,
              help="ONNX Runtime threads (the specs' bits do not depend on it).")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("worker-data"), show_default=True,
              help="The worker's own model store.")
@click.option("--models-dir", type=click.Path(file_okay=False, path_type=Path),
              help="The replicas' shared model store, when they have one (it holds uploaded "
                   "models) [default: <data-dir>/models].")
@click.option("--specs-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Folder of CES files whose models the worker holds [default: shipped "
                   "specs].")
@click.option("--lease-seconds", type=click.FloatRange(1.0, 3600.0), default=15.0,
              show_default=True,
              help="How long a claim holds without a heartbeat (another worker takes the "
                   "work over after that).")
@click.option("--max-items", type=click.IntRange(1), help="Stop after this many items.")
def command(database: str | None, role: str, threads: int, data_dir: Path,
            models_dir: Path | None, specs_dir: Path | None, lease_seconds: float,
            max_items: int | None) -> None:
    """Run job chunks for a verifier whose replicas use --job-workers remote.

    The worker claims work with leases and heartbeats; one that dies loses its
    lease and another worker of its role finishes the work. SIGTERM or Ctrl-C
    stops it after the item in hand.
    """
    import logging  # noqa: PLC0415
    import os  # noqa: PLC0415

    from .._paths import shipped_dir  # noqa: PLC0415
    from ..server.remote_worker import RemoteWorker, WorkerSettings  # noqa: PLC0415
    from ..server.store import open_store  # noqa: PLC0415

    location = database or os.environ.get("CYBERIAN_DATABASE")
    if not location:
        raise click.UsageError("give --database (or set CYBERIAN_DATABASE)")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    store = open_store(location)
    worker = RemoteWorker(store, WorkerSettings(
        role="executor" if role == "executor" else "replayer", data_dir=data_dir,
        specs_dir=specs_dir or shipped_dir("specs"), models_dir=models_dir, threads=threads,
        lease_seconds=lease_seconds))

    def stop(signum: int, frame: FrameType | None) -> None:
        worker.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        done = worker.run(max_items=max_items)
    finally:
        store.close()
    click.echo(f"worker {worker.id}: {done} items done", err=True)
