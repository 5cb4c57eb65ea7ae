"""Sample seed, the documented index draw, sample sizes, deterrence and escape odds."""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from receipt_helpers import make_spec

from cyberian import sampling
from cyberian.sampling import (
    PROCEDURE,
    auto_rate,
    draw_indices,
    escape_estimates,
    resolve_sampling,
    sample_seed,
    sample_size,
)


def _reference_draw(seed: bytes, k: int, n: int) -> list[int]:
    """The procedure exactly as the module docstring words it, with a full array."""
    words: list[int] = []
    counter = 0

    def next_word() -> int:
        nonlocal counter
        if not words:
            block = hashlib.sha256(seed + counter.to_bytes(8, "big")).digest()
            words.extend(int.from_bytes(block[i : i + 8], "big") for i in range(0, 32, 8))
            counter += 1
        return words.pop(0)

    def uniform(m: int) -> int:
        while True:
            w = next_word()
            if w < 2**64 - (2**64 % m):
                return w % m

    a = list(range(n))
    for i in range(k):
        j = i + uniform(n - i)
        a[i], a[j] = a[j], a[i]
    return sorted(a[:k])


def test_seed_is_the_documented_hash() -> None:
    roots = (bytes(32), b"\x01" * 32)
    nonce = b"\x02" * 32
    expected = hashlib.sha256(b"cyberian/v1/sample\0" + roots[0] + roots[1] + nonce).digest()
    assert sample_seed(*roots, nonce) == expected
    assert expected.hex() == "559d0a088daea2d986d858019c64b1c4996e5bcf2424760a7cf252980d46e435"


def test_seed_refuses_malformed_inputs() -> None:
    with pytest.raises(ValueError, match="input_root"):
        sample_seed(b"\x00" * 31, bytes(32), b"n")
    with pytest.raises(ValueError, match="nonce"):
        sample_seed(bytes(32), bytes(32), b"")


def test_golden_draws() -> None:
    # Pin the procedure: a change here breaks every receipt already issued.
    assert draw_indices(bytes(32), 3, 30) == [15, 18, 19]
    assert draw_indices(bytes(range(32)), 5, 1000) == [68, 221, 327, 908, 995]
    assert draw_indices(b"\xff" * 32, 4, 4) == [0, 1, 2, 3]
    assert PROCEDURE == "sha256-ctr/fisher-yates/v1"


@settings(max_examples=60, deadline=None)
@given(seed=st.binary(min_size=32, max_size=32), n=st.integers(1, 300), data=st.data())
def test_draw_matches_the_documented_procedure(seed: bytes, n: int, data: st.DataObject) -> None:
    k = data.draw(st.integers(0, n))
    drawn = draw_indices(seed, k, n)
    assert drawn == _reference_draw(seed, k, n)
    assert len(set(drawn)) == k
    assert drawn == sorted(drawn)
    assert all(0 <= i < n for i in drawn)


def test_rejection_sampling_discards_the_biased_tail() -> None:
    # 2**64 - 1 lies in the biased tail for m = 3 and must be skipped.
    assert sampling._uniform(iter([2**64 - 1, 5]), 3) == 2
    assert sampling._uniform(iter([2**64 - 2, 7]), 3) == (2**64 - 2) % 3


def test_draw_is_roughly_uniform() -> None:
    counts = Counter(
        draw_indices(hashlib.sha256(i.to_bytes(4, "big")).digest(), 1, 5)[0] for i in range(2000)
    )
    assert set(counts) == set(range(5))
    assert all(320 < c < 480 for c in counts.values()), counts


def test_draw_depends_on_the_seed() -> None:
    draws = {tuple(draw_indices(bytes([i]) * 32, 3, 100)) for i in range(20)}
    assert len(draws) > 15


def test_draw_refuses_bad_arguments() -> None:
    with pytest.raises(ValueError, match="k must be"):
        draw_indices(bytes(32), 5, 4)
    with pytest.raises(ValueError, match="seed"):
        draw_indices(bytes(31), 1, 4)
    with pytest.raises(ValueError, match="chunk_count"):
        draw_indices(bytes(32), 1, -1)


@pytest.mark.parametrize(
    ("rate", "n", "k"),
    [
        (0.1, 30, 3),  # 0.1 * 30 == 3.0000000000000004 in floats
        (0.3, 10, 3),
        (0.7, 10, 7),
        (0.1, 31, 4),
        (1e-9, 5, 1),  # at least one chunk
        (0.5, 1, 1),
        (1, 7, 7),
        (1.0, 7, 7),
        (0.25, 0, 0),  # nothing to sample
    ],
)
def test_sample_size_is_exact(rate: float, n: int, k: int) -> None:
    assert sample_size(rate, n) == k


@settings(max_examples=100, deadline=None)
@given(thousandths=st.integers(1, 1000), n=st.integers(1, 100_000))
def test_sample_size_matches_exact_decimal_arithmetic(thousandths: int, n: int) -> None:
    rate = thousandths / 1000
    assert sample_size(rate, n) == min(n, max(1, math.ceil(Fraction(thousandths, 1000) * n)))


@pytest.mark.parametrize("rate", [0, -0.1, 1.01, float("nan"), True, "0.1"])
def test_sample_size_refuses_bad_rates(rate: object) -> None:
    with pytest.raises(ValueError, match=r"rate|number"):
        sample_size(rate, 10)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("reward", "penalty", "cost", "collusion"),
    [(10, 90, 5, 0.2), (1, 1, 0.01, 0), (100, 0, 3, 0.5), (5, 5, 0.3, 0.9)],
)
def test_auto_rate_is_just_above_the_deterrence_bound(
    reward: float, penalty: float, cost: float, collusion: float
) -> None:
    auto = auto_rate(reward, penalty, cost, collusion)
    bound = Fraction(str(cost)) / ((1 - Fraction(str(collusion))) * (reward + penalty))
    rate = Fraction(str(auto.rate))
    assert auto.bound == pytest.approx(float(bound))
    assert rate > bound
    assert rate - Fraction(1, 10_000) <= bound * Fraction(11, 10) < rate
    assert auto.deterrent is True
    assert auto.as_dict()["margin"] == 0.1


def test_auto_rate_example() -> None:
    auto = auto_rate(10, 90, 5, 0.2)  # bound 5 / (0.8 * 100) = 0.0625; x1.1 = 0.06875
    assert (auto.bound, auto.rate) == (0.0625, 0.0688)


def test_auto_rate_with_zero_cost_is_the_smallest_step() -> None:
    assert auto_rate(1, 1, 0, 0).rate == 0.0001


def test_auto_rate_is_capped_and_says_when_it_cannot_deter() -> None:
    capped = auto_rate(1, 1, 10, 0.5)  # bound 10
    assert capped.rate == 1.0
    assert capped.deterrent is False
    near = auto_rate(1, 1, 1.9, 0)  # bound 0.95: x1.1 > 1, capped but still deterrent
    assert near.rate == 1.0
    assert near.deterrent is True


@pytest.mark.parametrize("args", [(0, 0, 1, 0), (1, 1, 1, 1), (1, 1, -1, 0), (-1, 2, 1, 0)])
def test_auto_rate_refuses_impossible_inputs(args: tuple[float, float, float, float]) -> None:
    with pytest.raises(ValueError, match=r"reward|collusion|cost"):
        auto_rate(*args)


@pytest.mark.parametrize(("n", "k"), [(30, 3), (100, 10), (8, 2), (50, 50), (1000, 7)])
def test_escape_probability_is_hypergeometric(n: int, k: int) -> None:
    rate = k / n
    for estimate, fraction in zip(escape_estimates(rate, k, n), (0.01, 0.1), strict=True):
        faked = min(n, max(1, math.ceil(Fraction(str(fraction)) * n)))
        exact = Fraction(math.comb(n - faked, k), math.comb(n, k))
        assert estimate.fraction == fraction
        assert estimate.faked_chunks == faked
        assert estimate.probability == pytest.approx(float(exact), rel=1e-12, abs=1e-15)
        assert estimate.approximation == pytest.approx((1 - rate) ** (fraction * n))


def test_escape_without_sampling_is_certain() -> None:
    assert [e.probability for e in escape_estimates(0.0, 0, 40)] == [1.0, 1.0]
    assert [e.approximation for e in escape_estimates(0.0, 0, 40)] == [1.0, 1.0]


def test_resolve_sampling_with_a_fixed_rate() -> None:
    plan = resolve_sampling(make_spec(verification="{sample_rate: 0.1}").verification, 30)
    assert (plan.rate, plan.k, plan.chunk_count, plan.auto) == (0.1, 3, 30, None)
    assert len(plan.escape()) == 2
    roots = (b"\x01" * 32, b"\x02" * 32)
    nonce = b"\x03" * 32
    assert plan.draw(*roots, nonce) == draw_indices(sample_seed(*roots, nonce), 3, 30)


def test_resolve_sampling_auto_records_its_inputs() -> None:
    spec = make_spec(
        verification="{sample_rate: auto, reward: 10, penalty: 90, cost: 5, collusion: 0.2}"
    )
    plan = resolve_sampling(spec.verification, 200)
    assert plan.auto is not None
    assert plan.rate == plan.auto.rate == 0.0688
    assert plan.k == 14  # ceil(0.0688 * 200) = ceil(13.76)
    assert plan.auto.as_dict() == {
        "reward": 10.0,
        "penalty": 90.0,
        "cost": 5.0,
        "collusion": 0.2,
        "bound": 0.0625,
        "margin": 0.1,
        "deterrent": True,
    }


def test_resolve_sampling_auto_without_inputs_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"verification\.reward"):
        resolve_sampling({"sample_rate": "auto"}, 10)


def test_new_nonce_is_fresh_and_sized() -> None:
    a, b = sampling.new_nonce(), sampling.new_nonce()
    assert len(a) == sampling.NONCE_BYTES == 32
    assert a != b
