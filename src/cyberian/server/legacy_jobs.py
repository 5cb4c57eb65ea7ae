"""Moving the job files of servers before 0.11 into the database, once, at startup.

Up to 0.10 a job's inputs were ``<data-dir>/jobs/<id>/inputs.json`` and its
rows ``output.f32``; now both are in the database (:mod:`.store.jobs`). At
the first start of a newer server, every job without stored inputs gets
them from its folder, and every SETTLED job its rows, cut into its chunks;
then the folder is removed. A folder that cannot be read is left in place,
with a warning (its job, if open, is refunded as abandoned when it runs).
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

from ..spec import parse_spec
from .store import Store
from .store import jobs as jobstore

__all__ = ["import_job_files"]

_log = logging.getLogger("cyberian.server")


def import_job_files(store: Store, jobs_dir: Path) -> int:
    """Import the folders under ``jobs_dir``; returns how many jobs were moved."""
    if not jobs_dir.is_dir():
        return 0
    moved = 0
    for folder in sorted(jobs_dir.iterdir()):
        job = jobstore.get_job(store, folder.name)
        if job is None:  # an orphan folder of a job that was never committed
            shutil.rmtree(folder, ignore_errors=True)
            continue
        try:
            texts = json.loads((folder / "inputs.json").read_text(encoding="utf-8"))
            output = folder / "output.f32"
            rows = output.read_bytes() if job.status == "SETTLED" else None
        except (OSError, ValueError) as exc:
            _log.warning("cannot move the files of job %s into the database: %s", job.id, exc)
            continue
        spec = parse_spec(job.spec_yaml)
        step = spec.chunk_size * spec.dimensions * 4
        has_inputs = jobstore.get_inputs(store, job.id) is not None
        with store.transaction() as conn:
            if not has_inputs:
                jobstore.insert_inputs(conn, job.id, texts)
            if rows is not None:
                conn.executemany("UPDATE chunks SET output = ? WHERE job_id = ? AND idx = ?",
                                 [(rows[i * step:(i + 1) * step], job.id, i)
                                  for i in range(job.chunk_count)])
        shutil.rmtree(folder, ignore_errors=True)
        moved += 1
    if not any(jobs_dir.iterdir()):
        jobs_dir.rmdir()
    return moved
