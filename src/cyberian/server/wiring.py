"""The start-up wiring: every object a running server holds, built, connected and torn down.

:func:`start_services` is the one place that constructs the store, the keys,
the catalog, the workers and the services on top, and hands each the others
it needs; :class:`Services` is what the HTTP layer then reaches them through.

Startup order: data dir, database (migrated), signing key, log key, model store and
catalog (building the shipped models on first use), worker processes (which
preload the catalog), then the job machinery, which removes orphaned job
folders and resumes every open job.
"""

from __future__ import annotations

import logging
import shutil
from contextlib import AsyncExitStack
from dataclasses import dataclass

from ..models.cache import ModelCache
from ..spec import SpecLimits
from .batching import VerifyBatcher
from .catalog import Catalog
from .config import Settings
from .embeddings import EmbeddingsService
from .events import JobEvents
from .jobs import JobManager
from .limits import RequestLimits
from .metrics import LiveSources, ServerMetrics
from .model_resolver import ModelResolver
from .onboarding import startup_notes
from .pipeline import Pipeline
from .quotas import QuotaBook, RateLimiter
from .signer import Signer
from .store import Store
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
    registrations: RateLimiter
    pool: WorkerPool
    jobs: JobManager
    vaas: VerifyService
    uploads: Uploads
    embeddings: EmbeddingsService
    metrics: ServerMetrics


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
    store = Store(settings.db_path)
    stack.callback(store.close)
    _log.info("database %s (schema version %d)", settings.db_path, store.schema_version)
    signer = Signer(data / "keys", store)
    _log.info("receipts are signed with key %s", signer.ensure(utcnow()))
    log = TransparencyLog(data / "keys", store, settings.log_origin)
    _log.info("transparency log %s", log.ensure(utcnow()))
    shutil.rmtree(data / "tmp", ignore_errors=True)
    files = ModelFiles(data / "models", data / "tmp", cache=ModelCache.default())
    catalog = Catalog.seed(settings.specs_dir, files)
    pool = WorkerPool(executors=settings.workers, threads=settings.worker_threads,
                      preload=catalog.specs(), on_restart=metrics.worker_restarted)
    stack.push_async_callback(pool.close)
    await pool.start()
    resolver = ModelResolver(store, catalog, files, spec_limits=SpecLimits(
        max_bytes=settings.max_spec_bytes, max_aliases=settings.max_spec_aliases,
        max_depth=settings.max_spec_depth))
    limits = RequestLimits.from_settings(settings)
    quotas = QuotaBook(store, settings.tiers)
    events = JobEvents()
    jobs_dir = data / "jobs"
    pipeline = Pipeline(store=store, resolver=resolver, pool=pool, signer=signer,
                        events=events, jobs_dir=jobs_dir, metrics=metrics)
    jobs = JobManager(store=store, resolver=resolver, quotas=quotas, pipeline=pipeline,
                      events=events, jobs_dir=jobs_dir, limits=limits,
                      queue_size=settings.queue_size,
                      busy_retry_after_sec=settings.busy_retry_after_sec, metrics=metrics)
    stack.push_async_callback(jobs.close)
    metrics.watch(LiveSources(open_jobs=lambda: open_job_counts(store),
                              queue_depth=lambda: jobs.capacity.used,
                              queue_capacity=jobs.capacity.size))
    removed = jobs.cleanup_orphans()
    if removed:
        _log.info("removed %d orphaned job folders", removed)
    batcher = VerifyBatcher(pool, max_texts=settings.vaas_batch_texts)
    stack.push_async_callback(batcher.close)
    vaas = VerifyService(store=store, resolver=resolver, quotas=quotas, batcher=batcher,
                         signer=signer, capacity=jobs.capacity, limits=limits,
                         metrics=metrics)
    resumed = jobs.recover()
    if resumed:
        _log.info("resumed %d open jobs", resumed)
    for note in startup_notes(settings, store):
        _log.warning("%s", note)
    return Services(settings=settings, store=store, signer=signer, log=log, files=files,
                    catalog=catalog, resolver=resolver, quotas=quotas, limiter=RateLimiter(),
                    registrations=RateLimiter(), pool=pool, jobs=jobs, vaas=vaas,
                    uploads=Uploads(store, files, catalog, pool),
                    embeddings=EmbeddingsService(jobs, resolver), metrics=metrics)
