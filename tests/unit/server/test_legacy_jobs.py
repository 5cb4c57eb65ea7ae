"""Moving a 0.10 data dir's job files into the database at the first start of 0.11."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from cyberian.server.accounts import create_account
from cyberian.server.legacy_jobs import import_job_files
from cyberian.server.store import Store
from cyberian.server.store import jobs as jobstore
from cyberian.spec import Spec

T0 = datetime(2030, 1, 1, tzinfo=UTC)


def test_inputs_and_rows_of_old_jobs_move_into_the_database(any_store: Store, tiny_spec: Spec,
                                                            tmp_path: Path) -> None:
    account, _, _ = create_account(any_store, "enterprise", now=T0, trial_days=14)
    texts = [f"old text {i}" for i in range(10)]  # chunk_size 4: chunks of 4, 4 and 2
    rows = np.arange(10 * tiny_spec.dimensions, dtype="<f4").reshape(10, -1)
    jobs_dir = tmp_path / "jobs"
    for job_id in ("job_settled", "job_open"):
        with any_store.transaction() as conn:
            jobstore.insert_job(conn, job_id=job_id, account_id=account.id, kind="job",
                                status="EXECUTING", model_id="tiny", spec_hash=tiny_spec.spec_hash,
                                spec_yaml=tiny_spec.to_yaml(portable=True), input_count=10,
                                chunk_count=3, billed_chunks=3, nonce=b"n", now=T0)
            conn.executemany(  # as 0.10 stored them: commitments, no rows, no workers
                "INSERT INTO chunks (job_id, idx, input_commitment, output_commitment) "
                "VALUES (?, ?, ?, ?)", [(job_id, i, "a" * 64, "b" * 64) for i in range(3)])
        folder = jobs_dir / job_id
        folder.mkdir(parents=True)
        (folder / "inputs.json").write_text(json.dumps(texts), encoding="utf-8")
        (folder / "output.f32").write_bytes(rows.tobytes())
    with any_store.transaction() as conn:  # settle one (a receipt row makes the CHECK hold)
        conn.execute("INSERT INTO receipts (id, account_id, job_id, kind, body, created_at) "
                     "VALUES ('rcpt_old', ?, 'job_settled', 'job', '{}', 't')", (account.id,))
        conn.execute("UPDATE jobs SET status = 'SETTLED', receipt_id = 'rcpt_old' "
                     "WHERE id = 'job_settled'")
    (jobs_dir / "job_never_committed").mkdir()  # a crash between the file and the row
    assert import_job_files(any_store, jobs_dir) == 2
    assert not jobs_dir.exists()
    for job_id in ("job_settled", "job_open"):
        assert jobstore.get_inputs(any_store, job_id) == texts
    assert b"".join(jobstore.output_bytes(any_store, "job_settled")) == rows.tobytes()
    assert jobstore.chunk_outputs(any_store, "job_settled", [2])[2] == rows[8:].tobytes()
    assert jobstore.chunk_outputs(any_store, "job_open", [0, 1, 2]) == {}  # not settled
    assert import_job_files(any_store, jobs_dir) == 0  # nothing left: a no-op
