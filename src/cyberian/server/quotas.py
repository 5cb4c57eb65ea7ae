"""Tiers, quota windows, usage, per-request limits, rate limits and in-flight reservations.

* **Standing**: an account's effective tier at a moment. A trial whose end has
  passed is ``free`` from ``trial_ends_at`` on; its free periods count from
  there. Other tiers count periods of ``period_days`` from ``period_anchor``
  (account creation, or the last tier change). The day is the UTC day.
* **Usage is derived, never counted**: the chunks of an account's jobs (and
  VaaS requests) created in the window whose status is not FAILED or
  REFUNDED. A refund therefore returns chunks simply by changing the job's
  status, and the numbers can never drift from the jobs that settled. Chunks
  of VaaS requests still running are held in the store (``quota_holds``), and
  the final check of every admission runs under the account's lock inside
  the transaction that stores the request (or its hold), so two concurrent
  requests -- on one replica or on several -- cannot both spend the last
  chunks.
* **Refusals**: ``request_too_large`` (per-request limits),
  ``quota_exceeded`` (period or day), ``tier_required`` (a feature). For a
  trial that has ended, every refusal the free tier makes is
  ``trial_expired`` instead. Rate limiting (``rate_limited``) is about pace,
  not entitlement, and stays what it is; its windows are in the store too, so
  a limit holds across replicas.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from .config import Tier, TierLimits
from .errors import (
    QuotaExceededError,
    RateLimitedError,
    RequestTooLargeError,
    ServerError,
    TierRequiredError,
    TrialExpiredError,
)
from .store import Connection, Store, rate_limits
from .store import quota_holds as holds
from .store.accounts import Account
from .store.jobs import chunks_used, chunks_used_in
from .timeutil import day_start, iso, utcnow

__all__ = [
    "QuotaBook",
    "RateLimiter",
    "Standing",
    "Usage",
    "check_chunks",
    "check_feature",
    "check_request_size",
    "derive_usage",
    "standing_of",
]


@dataclass(frozen=True)
class Standing:
    """An account's tier situation at one moment: effective tier, limits and windows."""

    tier: Tier
    effective_tier: Tier
    trial_expired: bool
    trial_ends_at: datetime | None
    limits: TierLimits
    period_start: datetime
    period_end: datetime
    day_start: datetime

    @property
    def subscription_status(self) -> Literal["trialing", "trial_expired", "active"]:
        """``trialing``, ``trial_expired`` or ``active``."""
        if self.tier != "trial":
            return "active"
        return "trial_expired" if self.trial_expired else "trialing"


@dataclass(frozen=True)
class Usage:
    """Chunks consumed in the current period and the current UTC day."""

    period: int
    today: int


def _period(anchor: datetime, days: int, now: datetime) -> tuple[datetime, datetime]:
    length = timedelta(days=days)
    if now < anchor:
        return anchor, anchor + length
    start = anchor + ((now - anchor) // length) * length
    return start, start + length


def standing_of(account: Account, tiers: dict[Tier, TierLimits], now: datetime) -> Standing:
    """The account's standing at ``now``."""
    trial_end = account.trial_ends_at
    if account.tier == "trial":
        trial_end = trial_end or account.period_anchor + timedelta(
            days=tiers["trial"].period_days)
        if now >= trial_end:
            start, end = _period(trial_end, tiers["free"].period_days, now)
            return Standing("trial", "free", True, trial_end, tiers["free"], start, end,
                            day_start(now))
        return Standing("trial", "trial", False, trial_end, tiers["trial"],
                        account.period_anchor, trial_end, day_start(now))
    limits = tiers[account.tier]
    start, end = _period(account.period_anchor, limits.period_days, now)
    return Standing(account.tier, account.tier, False, None, limits, start, end, day_start(now))


def derive_usage(store: Store, account_id: str, standing: Standing) -> Usage:
    """Chunks of the account's live or settled jobs created in the period and today."""
    period, today = chunks_used(store, account_id, period_start=standing.period_start,
                                day_start=standing.day_start)
    return Usage(period=period, today=today)


def _refuse(standing: Standing, refusal: type[ServerError], message: str,
            **extra: Any) -> ServerError:
    if standing.trial_expired:
        ended = iso(standing.trial_ends_at) if standing.trial_ends_at else "earlier"
        return TrialExpiredError(f"the trial ended at {ended} and the free tier does not allow "
                                 f"this request: {message}", **extra)
    return refusal(message, **extra)


def check_request_size(standing: Standing, *, input_count: int, chunk_count: int) -> None:
    """Refuse a request over the tier's per-request limits (:class:`RequestTooLargeError`)."""
    limits = standing.limits
    if input_count > limits.max_input_texts:
        raise _refuse(standing, RequestTooLargeError,
                      f"{input_count} input texts; the {standing.effective_tier} tier allows "
                      f"at most {limits.max_input_texts} per request",
                      limit=limits.max_input_texts, requested=input_count)
    if chunk_count > limits.max_chunks_per_request:
        raise _refuse(standing, RequestTooLargeError,
                      f"{chunk_count} chunks; the {standing.effective_tier} tier allows at most "
                      f"{limits.max_chunks_per_request} per request",
                      limit=limits.max_chunks_per_request, requested=chunk_count)


def check_chunks(standing: Standing, usage: Usage, *, reserved: int, requested: int) -> None:
    """Refuse ``requested`` chunks that would exceed the period or day quota."""
    windows = (
        ("period", standing.limits.chunks_per_period, usage.period, standing.period_end),
        ("day", standing.limits.chunks_per_day, usage.today,
         standing.day_start + timedelta(days=1)),
    )
    for window, limit, used, resets in windows:
        if limit is not None and used + reserved + requested > limit:
            raise _refuse(
                standing, QuotaExceededError,
                f"{requested} more chunks would exceed the {window} quota of the "
                f"{standing.effective_tier} tier ({used + reserved} of {limit} used; resets at "
                f"{iso(resets)})",
                window=window, limit=limit, used=used + reserved, requested=requested,
                resets_at=iso(resets))


def check_feature(standing: Standing, feature: Literal["model_upload"]) -> None:
    """Refuse a feature the tier lacks (:class:`TierRequiredError`)."""
    if not getattr(standing.limits, feature):
        raise _refuse(standing, TierRequiredError,
                      f"{feature.replace('_', ' ')} needs the enterprise tier "
                      f"(this account is {standing.effective_tier})",
                      required_tier="enterprise")


class RateLimiter:
    """Sliding one-minute windows of request times per key, kept in the store."""

    WINDOW = 60.0
    SWEEP_EVERY = 1000
    """Every this many requests, the windows of keys no longer seen are dropped."""

    def __init__(self, store: Store, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._clock = clock
        self._hits = 0

    def hit(self, key: str, per_minute: int) -> float | None:
        """Count a request; ``None`` if allowed, else seconds until one is (not counted)."""
        self._hits += 1
        if self._hits % self.SWEEP_EVERY == 0:
            self.forget_old()
        return rate_limits.hit(self._store, key, per_minute, self._clock(), self.WINDOW)

    def check(self, key: str, per_minute: int) -> None:
        """Count a request or raise :class:`RateLimitedError`, saying when to retry."""
        wait = self.hit(key, per_minute)
        if wait is not None:
            seconds = max(1, math.ceil(wait))
            raise RateLimitedError(
                f"more than {per_minute} requests per minute; retry in {seconds} s",
                retry_after_sec=seconds)

    def forget_old(self) -> int:
        """Drop counted requests older than the window (of keys no longer seen)."""
        return rate_limits.forget_before(self._store, self._clock() - self.WINDOW)


class QuotaBook:
    """Admission of chunk-consuming requests: derived usage plus held chunks.

    ``replica`` names the holds this replica takes; they last ``lease_seconds``
    unless renewed (:meth:`renew_holds`), so those of a replica that died
    stop counting soon.
    """

    def __init__(self, store: Store, tiers: dict[Tier, TierLimits], *, replica: str = "local",
                 lease_seconds: float = 15.0) -> None:
        self._store = store
        self._tiers = tiers
        self._replica = replica
        self._lease = timedelta(seconds=lease_seconds)

    def standing(self, account: Account, now: datetime) -> Standing:
        """The account's standing at ``now``."""
        return standing_of(account, self._tiers, now)

    def usage(self, account: Account, now: datetime) -> Usage:
        """Chunks consumed by settled or running work (held chunks not included)."""
        return derive_usage(self._store, account.id, self.standing(account, now))

    def reserved(self, account_id: str) -> int:
        """Chunks held by the account's running VaaS requests."""
        return holds.held_chunks(self._store, account_id, utcnow())

    def admit(self, account: Account, *, input_count: int, chunk_count: int,
              billed_chunks: int, now: datetime) -> None:
        """Refuse (raise) unless the request fits the per-request limits and the quotas.

        ``chunk_count`` is the request's chunks in its spec's ``chunk_size``,
        ``billed_chunks`` what it is charged; the per-request chunk limit holds
        for both, the quotas count what is charged. This is the early check,
        before any work; :meth:`admit_locked` repeats the quota check where it
        counts.
        """
        standing = self.standing(account, now)
        check_request_size(standing, input_count=input_count,
                           chunk_count=max(chunk_count, billed_chunks))
        if _unlimited(standing):
            return
        check_chunks(standing, derive_usage(self._store, account.id, standing),
                     reserved=self.reserved(account.id), requested=billed_chunks)

    def admit_locked(self, conn: Connection, account: Account, *, billed_chunks: int,
                     now: datetime) -> None:
        """The quota check inside the transaction that stores the request: under the
        account's lock, so no concurrent admission sees the same room."""
        standing = self.standing(account, now)
        if _unlimited(standing):
            return
        conn.lock(f"quota:{account.id}")
        period, today = chunks_used_in(conn, account.id, period_start=standing.period_start,
                                       day_start=standing.day_start)
        check_chunks(standing, Usage(period=period, today=today),
                     reserved=holds.held_chunks_in(conn, account.id, now),
                     requested=billed_chunks)

    @contextmanager
    def hold(self, account: Account, chunks: int, now: datetime) -> Iterator[str]:
        """Hold ``chunks`` (checked under the account's lock) for the duration of the block;
        yields the hold's id, which the transaction that stores the request drops."""
        hold_id = f"hold_{uuid.uuid4().hex}"
        with self._store.transaction() as conn:
            self.admit_locked(conn, account, billed_chunks=chunks, now=now)
            holds.add_hold(conn, hold_id, account.id, chunks, replica=self._replica,
                           expires_at=now + self._lease)
        try:
            yield hold_id
        finally:
            with self._store.transaction() as conn:
                holds.drop_hold(conn, hold_id)


    def renew_holds(self, now: datetime) -> None:
        """Keep this replica's holds alive for another lease."""
        holds.renew_holds(self._store, self._replica, now + self._lease)


def _unlimited(standing: Standing) -> bool:
    limits = standing.limits
    return limits.chunks_per_period is None and limits.chunks_per_day is None
