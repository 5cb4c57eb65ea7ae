"""Job drivers on both backends: who drives an open job, adoption after a claim expires, and
that a replica which lost its claim can change nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cyberian.commitments import ChunkCommitment
from cyberian.server.accounts import create_account
from cyberian.server.config import ConfigError
from cyberian.server.signer import Signer
from cyberian.server.store import Store, signing_keys
from cyberian.server.store import jobs as jobstore

T0 = datetime(2030, 1, 1, tzinfo=UTC)
LEASE = timedelta(seconds=10)


def _open_job(store: Store, job_id: str, driver: str | None) -> None:
    account, _, _ = create_account(store, "enterprise", now=T0, trial_days=14)
    with store.transaction() as conn:
        jobstore.insert_job(conn, job_id=job_id, account_id=account.id, kind="job",
                            status="EXECUTING", model_id="tiny", spec_hash="h", spec_yaml="y",
                            input_count=4, chunk_count=1, billed_chunks=1, nonce=b"n", now=T0,
                            driver=(driver, T0 + LEASE) if driver else None)


def test_a_replica_adopts_its_own_jobs_at_once_and_others_only_once_expired(
        any_store: Store) -> None:
    _open_job(any_store, "job_mine", "rep_a")
    _open_job(any_store, "job_theirs", "rep_b")
    _open_job(any_store, "job_nobodys", None)  # written before drivers existed
    assert jobstore.adopt_jobs(any_store, "rep_a", T0, LEASE) == ["job_mine", "job_nobodys"]
    jobstore.extend_drivers(any_store, "rep_b", T0 + LEASE * 0.9, LEASE)  # rep_b is alive
    assert jobstore.adopt_jobs(any_store, "rep_a", T0 + LEASE * 1.5, LEASE) == [
        "job_mine", "job_nobodys"]
    assert not jobstore.is_driver(any_store, "job_theirs", "rep_a")
    # rep_b stops renewing: once its claim expires, rep_a takes the job over
    assert jobstore.adopt_jobs(any_store, "rep_a", T0 + LEASE * 2, LEASE) == [
        "job_mine", "job_nobodys", "job_theirs"]
    assert jobstore.is_driver(any_store, "job_theirs", "rep_a")


def test_a_replica_that_lost_its_claim_changes_nothing(any_store: Store) -> None:
    _open_job(any_store, "job_1", "rep_a")
    chunk = ChunkCommitment(0, "a" * 64, "b" * 64)
    with any_store.transaction() as conn:
        jobstore.add_chunks(conn, "job_1", [chunk], [b"\0" * 8], "exec", T0, driver="rep_a")
    assert jobstore.adopt_jobs(any_store, "rep_b", T0 + LEASE * 2, LEASE) == ["job_1"]
    for change in (
            lambda conn: jobstore.restart_execution(conn, "job_1", T0, driver="rep_a"),
            lambda conn: jobstore.add_chunks(conn, "job_1", [chunk], [b"\0" * 8], "exec", T0,
                                             driver="rep_a"),
            lambda conn: jobstore.mark_proving(conn, "job_1", roots=("aa", "bb"), sampled=[0],
                                               executor_env={}, now=T0, driver="rep_a")):
        with pytest.raises(jobstore.NotDriverError), any_store.transaction() as conn:
            change(conn)
    with any_store.transaction() as conn:
        assert not jobstore.finish(conn, "job_1", "FAILED", "stale", T0, driver="rep_a")
    job = jobstore.get_job(any_store, "job_1")
    assert job is not None
    assert (job.status, job.chunks_done) == ("EXECUTING", 1)
    assert len(jobstore.chunk_commitments(any_store, "job_1")) == 1
    with any_store.transaction() as conn:  # the new driver may
        jobstore.restart_execution(conn, "job_1", T0, driver="rep_b")
    assert jobstore.chunk_commitments(any_store, "job_1") == []


def test_a_published_key_missing_from_the_keys_folder_names_the_setting(
        any_store: Store, tmp_path: Path) -> None:
    first = Signer(tmp_path / "replica-a-keys", any_store)
    keyid = first.ensure(T0)
    elsewhere = Signer(tmp_path / "replica-b-keys", any_store)  # not the shared folder
    with pytest.raises(ConfigError, match="keys_dir") as refused:
        elsewhere.ensure(T0)
    assert keyid in refused.value.message
    assert signing_keys.newest_keyid(any_store) == keyid
