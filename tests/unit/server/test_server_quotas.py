"""Quota maths: standing and windows, refusals and their codes, rate limits, reservations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cyberian.server.config import DEFAULT_TIERS
from cyberian.server.errors import ApiProblem
from cyberian.server.quotas import (
    RateLimiter,
    Usage,
    check_chunks,
    check_feature,
    check_request_size,
    standing_of,
)
from cyberian.server.store import Store
from cyberian.server.store.accounts import Account

T0 = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
TIERS = dict(DEFAULT_TIERS)


def account(tier: str, *, created: datetime = T0, trial_days: int = 14) -> Account:
    return Account(id="acct_x", tier=tier, label=None, created_at=created,  # type: ignore[arg-type]
                   trial_ends_at=created + timedelta(days=trial_days) if tier == "trial" else None,
                   period_anchor=created)


def test_trial_standing_before_and_after_its_end() -> None:
    during = standing_of(account("trial"), TIERS, T0 + timedelta(days=3))
    assert (during.effective_tier, during.trial_expired) == ("trial", False)
    assert during.subscription_status == "trialing"
    assert (during.period_start, during.period_end) == (T0, T0 + timedelta(days=14))
    assert during.limits == TIERS["trial"]
    after = standing_of(account("trial"), TIERS, T0 + timedelta(days=50))
    assert (after.effective_tier, after.trial_expired) == ("free", True)
    assert after.subscription_status == "trial_expired"
    trial_end = T0 + timedelta(days=14)
    assert after.period_start == trial_end + timedelta(days=30)  # second free period
    assert after.period_end == trial_end + timedelta(days=60)
    assert after.limits == TIERS["free"]


def test_periods_roll_every_period_days_and_days_are_utc() -> None:
    now = T0 + timedelta(days=45, hours=20)
    standing = standing_of(account("enterprise"), TIERS, now)
    assert standing.period_start == T0 + timedelta(days=30)
    assert standing.day_start == datetime(2026, 4, 16, tzinfo=UTC)  # now is 04-16 05:30
    assert standing.subscription_status == "active"


def test_request_size_limits_are_413_or_trial_expired() -> None:
    trial = standing_of(account("trial"), TIERS, T0)
    check_request_size(trial, input_count=1000, chunk_count=100)
    with pytest.raises(ApiProblem) as texts:
        check_request_size(trial, input_count=1001, chunk_count=1)
    assert (texts.value.status, texts.value.code, texts.value.extra["limit"]) == (
        413, "request_too_large", 1000)
    with pytest.raises(ApiProblem) as chunks:
        check_request_size(trial, input_count=10, chunk_count=101)
    assert chunks.value.extra["limit"] == 100
    expired = standing_of(account("trial"), TIERS, T0 + timedelta(days=15))
    with pytest.raises(ApiProblem) as downgraded:
        check_request_size(expired, input_count=10, chunk_count=51)  # trial would allow it
    assert (downgraded.value.status, downgraded.value.code) == (402, "trial_expired")
    assert "free tier" in downgraded.value.message


def test_chunk_quotas_count_usage_and_reservations() -> None:
    free = standing_of(account("free"), TIERS, T0)
    check_chunks(free, Usage(period=50, today=20), reserved=4, requested=1)  # 25 per day
    with pytest.raises(ApiProblem) as day:
        check_chunks(free, Usage(period=50, today=20), reserved=4, requested=2)
    assert (day.value.status, day.value.code, day.value.extra["window"]) == (
        402, "quota_exceeded", "day")
    assert (day.value.extra["used"], day.value.extra["requested"]) == (24, 2)
    with pytest.raises(ApiProblem) as period:
        check_chunks(free, Usage(period=100, today=0), reserved=0, requested=1)
    assert period.value.extra["window"] == "period"
    enterprise = standing_of(account("enterprise"), TIERS, T0)
    check_chunks(enterprise, Usage(period=10**9, today=10**9), reserved=10**6, requested=10**4)


def test_features_need_the_tier() -> None:
    check_feature(standing_of(account("enterprise"), TIERS, T0), "model_upload")
    with pytest.raises(ApiProblem) as refused:
        check_feature(standing_of(account("free"), TIERS, T0), "model_upload")
    assert (refused.value.status, refused.value.code) == (402, "tier_required")
    with pytest.raises(ApiProblem) as expired:
        check_feature(standing_of(account("trial"), TIERS, T0 + timedelta(days=20)),
                      "model_upload")
    assert expired.value.code == "trial_expired"


def test_rate_limiter_slides_and_refusals_do_not_count(any_store: Store) -> None:
    now = [0.0]
    limiter = RateLimiter(any_store, clock=lambda: now[0])
    for second in range(3):
        now[0] = float(second)
        assert limiter.hit("a", 3) is None
    now[0] = 10.0
    assert limiter.hit("a", 3) == pytest.approx(50.0)  # the first hit leaves at t=60
    assert limiter.hit("b", 3) is None  # per key
    now[0] = 60.0
    assert limiter.hit("a", 3) is None
    assert limiter.hit("a", 3) == pytest.approx(1.0)
    with pytest.raises(ApiProblem) as limited:
        limiter.check("a", 3)
    assert limited.value.status == 429
    assert limited.value.headers["Retry-After"] == str(limited.value.extra["retry_after_sec"])
