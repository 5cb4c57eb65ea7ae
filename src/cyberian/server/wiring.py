"""The start-up wiring: every object a running server holds, built, connected and torn down.

:func:`start_services` is the one place that constructs the store, the keys,
the catalog, the workers and the services on top, and hands each the others
it needs; :class:`Services` is what the HTTP layer then reaches them through.

Startup order: data dir, database (migrated), signing key, log key, model store and
catalog (building the shipped models on first use), worker processes (which
preload the catalog), then the job machinery, which adopts and resumes this
replica's open jobs and those of replicas whose claim expired.
"""

from __future__ import annotations

import logging
import shutil
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from ..models.cache import ModelCache
from ..spec import SpecLimits
from .batching import VerifyBatcher
from .catalog import Catalog
from .config import Settings
from .embeddings import EmbeddingsService
from .events import JobEvents
from .jobs import JobManager
from .legacy_jobs import import_job_files
from .limits import RequestLimits
from .metrics import LiveSources, ServerMetrics
from .model_resolver import ModelResolver
from .onboarding import startup_notes
from .pipeline import Pipeline
from .quotas import QuotaBook, RateLimiter
from .replica import replica_id
from .runners import ChunkRunner, LocalRunner, RemoteRunner
from .signer import Signer
from .store import Store, open_store
from .store.files import ModelFiles
from .store.jobs import open_job_counts
from .timeutil import utcnow
from .transparency import TransparencyLog
from .uploads import Uploads
from .vaas import VerifyService
from .workers.faults import ENV_VAR, faults_from_env
from .workers.pool import WorkerPool

__all__ = ["REGISTRATIONS_PER_MINUTE", "Services", "start_services"]

_log = logging.getLogger("cyberian.server")

REGISTRATIONS_PER_MINUTE = 10
"""Accounts one client address may register per minute."""


@dataclass
class Services:
    """The server's state: settings, store, keys, models, workers and the services on top."""

    settings: Settings
    store: Store
    signer: Signer
    log: TransparencyLog
    files: ModelFiles
    catalog: Catalog
    resolver: ModelResolver
    quotas: QuotaBook
    limiter: RateLimiter
    pool: WorkerPool
    jobs: JobManager
    vaas: VerifyService
    uploads: Uploads
    embeddings: EmbeddingsService
    metrics: ServerMetrics
    replica: str
    """This replica's id (the driver of the jobs it runs)."""
    worker_timeout: timedelta
    """A remote worker whose last heartbeat is older than this counts as gone."""


def _staging_folder(settings: Settings, replica: str) -> Path:
    """Where uploads and builds are staged: beside the model store (a rename moves a file
    in), one folder per replica (wiped at its start, so no replica wipes another's)."""
    if settings.models_dir is None:
        return settings.data_dir / "tmp"
    return settings.models_dir / f".staging-{replica}"


def _warn_faults() -> None:
    faults = faults_from_env()
    if faults is not None:
        banner = "!" * 72
        _log.warning("%s", banner)
        _log.warning("TEST-ONLY FAULT INJECTION IS ON (%s): %s", ENV_VAR, faults.describe())
        _log.warning("this server produces WRONG RESULTS on purpose; never use it for real work")
        _log.warning("%s", banner)


async def start_services(settings: Settings, stack: AsyncExitStack,
                         metrics: ServerMetrics | None = None) -> Services:
    """Build and start every service; ``stack`` closes them again (in reverse order).

    ``metrics`` is where they count (a registry of their own when not given).
    """
    metrics = metrics if metrics is not None else ServerMetrics()
    _warn_faults()
    data = settings.data_dir
    data.mkdir(parents=True, exist_ok=True)
    data.chmod(0o700)
    store = open_store(settings.store_location)
    stack.callback(store.close)
    _log.info("database %s (schema version %d)", store.location, store.schema_version)
    signer = Signer(settings.key_folder, store)
    _log.info("receipts are signed with key %s", signer.ensure(utcnow()))
    log = TransparencyLog(settings.key_folder, store, settings.log_origin)
    _log.info("transparency log %s", log.ensure(utcnow()))
    replica = replica_id(data)
    staging = _staging_folder(settings, replica)
    shutil.rmtree(staging, ignore_errors=True)
    files = ModelFiles(settings.model_folder, staging, cache=ModelCache.default())
    catalog = Catalog.seed(settings.specs_dir, files)
    pool = WorkerPool(executors=settings.workers, threads=settings.worker_threads,
                      preload=catalog.specs(), on_restart=metrics.worker_restarted)
    stack.push_async_callback(pool.close)
    await pool.start()
    resolver = ModelResolver(store, catalog, files, spec_limits=SpecLimits(
        max_bytes=settings.max_spec_bytes, max_aliases=settings.max_spec_aliases,
        max_depth=settings.max_spec_depth))
    limits = RequestLimits.from_settings(settings)
    quotas = QuotaBook(store, settings.tiers, replica=replica,
                       lease_seconds=settings.lease_seconds)
    events = JobEvents()
    imported = import_job_files(store, data / "jobs")
    if imported:
        _log.info("moved the files of %d jobs into the database", imported)
    runner: ChunkRunner = (RemoteRunner(store, metrics, replica)
                           if settings.job_workers == "remote"
                           else LocalRunner(store, pool, metrics, replica))
    pipeline = Pipeline(store=store, resolver=resolver, runner=runner, signer=signer,
                        events=events, replica=replica, data_dir=data, metrics=metrics)
    jobs = JobManager(store=store, resolver=resolver, quotas=quotas, pipeline=pipeline,
                      events=events, limits=limits, queue_size=settings.queue_size,
                      busy_retry_after_sec=settings.busy_retry_after_sec, metrics=metrics,
                      replica=replica, lease_seconds=settings.lease_seconds)
    stack.push_async_callback(jobs.close)
    metrics.watch(LiveSources(open_jobs=lambda: open_job_counts(store),
                              queue_depth=lambda: jobs.capacity.used,
                              queue_capacity=jobs.capacity.size))
    _log.info("replica %s; job chunks run on %s workers", replica, settings.job_workers)
    batcher = VerifyBatcher(pool, max_texts=settings.vaas_batch_texts)
    stack.push_async_callback(batcher.close)
    vaas = VerifyService(store=store, resolver=resolver, quotas=quotas, batcher=batcher,
                         signer=signer, capacity=jobs.capacity, limits=limits,
                         metrics=metrics)
    resumed = jobs.adopt()
    if resumed:
        _log.info("resumed %d open jobs", resumed)
    jobs.start_renewing()
    limiter = RateLimiter(store)
    for note in startup_notes(settings, store):
        _log.warning("%s", note)
    return Services(settings=settings, store=store, signer=signer, log=log, files=files,
                    catalog=catalog, resolver=resolver, quotas=quotas, limiter=limiter,
                    pool=pool, jobs=jobs, vaas=vaas,
                    uploads=Uploads(store, files, catalog, pool),
                    embeddings=EmbeddingsService(jobs, resolver), metrics=metrics,
                    replica=replica, worker_timeout=timedelta(seconds=settings.lease_seconds))
