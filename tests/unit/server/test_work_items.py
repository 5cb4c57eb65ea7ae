"""Work items on both backends: claims, leases, heartbeats, take-over, poison items, and the
rule that a chunk's replayer is never its executor."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from cyberian.commitments import ChunkCommitment
from cyberian.server.accounts import create_account
from cyberian.server.store import Store, work
from cyberian.server.store import jobs as jobstore

T0 = datetime(2030, 1, 1, tzinfo=UTC)
LEASE = timedelta(seconds=10)


def _job(store: Store, job_id: str = "job_1", chunks: int = 4) -> str:
    account, _, _ = create_account(store, "enterprise", now=T0, trial_days=14)
    with store.transaction() as conn:
        jobstore.insert_job(conn, job_id=job_id, account_id=account.id, kind="job",
                            status="EXECUTING", model_id="tiny", spec_hash="h", spec_yaml="y",
                            input_count=chunks * 4, chunk_count=chunks, billed_chunks=chunks,
                            nonce=b"n", now=T0, driver=("rep_a", T0 + LEASE))
        jobstore.insert_inputs(conn, job_id, [f"t{i}" for i in range(chunks * 4)])
    return job_id


def test_each_item_goes_to_one_worker_and_only_its_holder_completes_it(any_store: Store) -> None:
    job = _job(any_store)
    with any_store.transaction() as conn:
        work.enqueue(conn, job, "executor", [(0, 2), (2, 2)], T0)
    first = work.claim(any_store, "executor", "w1", T0, LEASE)
    second = work.claim(any_store, "executor", "w2", T0, LEASE)
    assert first is not None
    assert second is not None
    assert (first.chunks, second.chunks) == (range(0, 2), range(2, 4))
    assert work.claim(any_store, "executor", "w3", T0, LEASE) is None
    assert work.claim(any_store, "replayer", "w3", T0, LEASE) is None  # roles are separate
    with any_store.transaction() as conn:
        assert not work.complete(conn, first.id, "w2", {}, T0)
        assert work.complete(conn, first.id, "w1", {"worker": "w1"}, T0)
    assert [item.state for item in work.items_of(any_store, job, "executor")] == [
        "done", "leased"]
    assert work.items_of(any_store, job, "executor")[0].manifest == {"worker": "w1"}


def test_an_expired_lease_passes_the_item_on_and_the_old_holder_loses_it(
        any_store: Store) -> None:
    job = _job(any_store)
    with any_store.transaction() as conn:
        work.enqueue(conn, job, "executor", [(0, 4)], T0)
    taken = work.claim(any_store, "executor", "w1", T0, LEASE)
    assert taken is not None
    assert work.claim(any_store, "executor", "w2", T0 + LEASE / 2, LEASE) is None
    assert work.heartbeat(any_store, "w1", T0 + LEASE / 2, LEASE) == 1  # renewed to 1.5 L
    assert work.claim(any_store, "executor", "w2", T0 + LEASE * 1.2, LEASE) is None
    heir = work.claim(any_store, "executor", "w2", T0 + LEASE * 2, LEASE)  # w1 stopped beating
    assert heir is not None
    assert (heir.id, heir.lease_owner, heir.attempts) == (taken.id, "w2", 2)
    with any_store.transaction() as conn:
        assert not work.complete(conn, taken.id, "w1", {}, T0 + LEASE * 2)
    assert not work.fail(any_store, taken.id, "w1", "late", T0 + LEASE * 2)
    assert work.fail(any_store, taken.id, "w2", "the model could not run", T0 + LEASE * 2)
    (failed,) = work.items_of(any_store, job, "executor")
    assert (failed.state, failed.error) == ("failed", "the model could not run")


def test_an_item_whose_workers_keep_dying_is_failed_not_passed_on(any_store: Store) -> None:
    job = _job(any_store)
    with any_store.transaction() as conn:
        work.enqueue(conn, job, "executor", [(0, 4)], T0)
    now = T0
    for attempt in range(3):
        assert work.claim(any_store, "executor", f"w{attempt}", now, LEASE,
                          max_attempts=3) is not None
        now += LEASE * 2  # the worker died: its lease runs out
    assert work.claim(any_store, "executor", "w9", now, LEASE, max_attempts=3) is None
    (item,) = work.items_of(any_store, job, "executor")
    assert item.state == "failed"
    assert "died 3 times" in (item.error or "")


def test_a_replayer_never_takes_chunks_it_executed(any_store: Store) -> None:
    job = _job(any_store, chunks=2)
    with any_store.transaction() as conn:
        jobstore.add_chunks(conn, job, [ChunkCommitment(0, "a" * 64, "b" * 64),
                                        ChunkCommitment(1, "c" * 64, "d" * 64)],
                            [b"\0" * 8, b"\0" * 8], "w1", T0)
        work.enqueue(conn, job, "replayer", [(0, 2)], T0)
    assert work.claim(any_store, "replayer", "w1", T0, LEASE) is None
    other = work.claim(any_store, "replayer", "w2", T0, LEASE)
    assert other is not None
    assert other.lease_owner == "w2"


def test_concurrent_claimers_share_the_items_without_doubles(any_store: Store) -> None:
    job = _job(any_store, chunks=40)
    with any_store.transaction() as conn:
        work.enqueue(conn, job, "executor", [(i, 1) for i in range(40)], T0)
    claimed: list[tuple[str, str]] = []
    guard = threading.Lock()

    def claimer(name: str) -> None:
        while (item := work.claim(any_store, "executor", name, T0, LEASE)) is not None:
            with guard:
                claimed.append((item.id, name))

    threads = [threading.Thread(target=claimer, args=(f"w{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(item for item, _ in claimed) == sorted(
        item.id for item in work.items_of(any_store, job, "executor"))
    assert len(claimed) == 40
