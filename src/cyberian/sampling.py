"""Sample-and-replay: the sample seed, the index draw, sample sizes and deterrence.

Procedure ``sha256-ctr/fisher-yates/v1`` (what a receipt's ``sampling``
records, so anyone can recompute it):

1. **Seed.** ``seed = SHA-256(b"cyberian/v1/sample\\0" || input_root ||
   output_root || nonce)`` with the two Merkle roots as 32 raw bytes each and
   the nonce as raw bytes (32 bytes: a server secret drawn when the job is
   created, revealed in the receipt). The executor has committed to both
   roots before the nonce is revealed.
2. **Word stream.** Block ``c`` (``c = 0, 1, 2, ...``) is ``SHA-256(seed ||
   u64be(c))``; each block gives four words, its bytes 0-7, 8-15, 16-23 and
   24-31 read as unsigned 64-bit big-endian integers, in that order.
3. **Uniform integer below m** (rejection sampling, no modulo bias): take the
   next word ``w``; if ``w >= 2**64 - (2**64 mod m)`` discard it and take the
   next; otherwise the result is ``w mod m``.
4. **Indices** (partial Fisher-Yates over ``a = [0, 1, ..., n - 1]``, ``n`` =
   chunk count): for ``i = 0, ..., k - 1``: ``j = i + uniform(n - i)``, swap
   ``a[i]`` and ``a[j]``. The sample is ``a[0:k]`` sorted ascending.

Sample size: ``k = min(n, max(1, ceil(rate * n)))``, computed exactly on the
rate's shortest decimal representation (``0.1 * 30`` gives 3, not 4).

Deterrence (``sample_rate: auto``): honesty dominates when ``p > C / ((1 - r)
(R + S))`` (reward R, penalty S, cost saved C, colluding share r). The rate
used is the smallest multiple of 1/10000 strictly greater than ``(1 + 0.1) x
bound`` (a 10 % margin), capped at 1; every input, the bound, the margin and
the rate are recorded.

Escape probability for a fraction ``f`` of faked chunks (``F = min(n,
max(1, ceil(f * n)))`` chunks): ``probability`` is the exact chance that a
uniform sample of ``k`` distinct chunks misses all ``F``, ``C(n - F, k) /
C(n, k) = prod_{i<F} (n - k - i) / (n - i)``; ``approximation`` is the
contract's ``(1 - rate) ** (f * n)``. Both are given for f = 1 % and 10 %.
"""

from __future__ import annotations

import hashlib
import math
import secrets
import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Final

__all__ = [
    "ESCAPE_FRACTIONS",
    "NONCE_BYTES",
    "PROCEDURE",
    "SEED_TAG",
    "AutoRate",
    "EscapeEstimate",
    "SamplingPlan",
    "auto_rate",
    "draw_indices",
    "escape_estimates",
    "new_nonce",
    "resolve_sampling",
    "sample_seed",
    "sample_size",
]

PROCEDURE: Final = "sha256-ctr/fisher-yates/v1"
"""Name of the documented draw procedure, recorded in every receipt."""

SEED_TAG: Final = b"cyberian/v1/sample\0"
NONCE_BYTES: Final = 32
ESCAPE_FRACTIONS: Final = (0.01, 0.1)
AUTO_MARGIN: Final = Fraction(1, 10)
AUTO_GRID: Final = 10_000

_U64: Final = struct.Struct(">Q")
_WORDS: Final = struct.Struct(">4Q")
_MAX_COUNT: Final = 2**53


def _exact(value: float | int) -> Fraction:
    """The exact rational value of a number's shortest decimal representation."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"expected a finite number, got {value!r}")
    return Fraction(repr(value)) if isinstance(value, float) else Fraction(value)


def _check_count(chunk_count: int) -> int:
    if isinstance(chunk_count, bool) or not isinstance(chunk_count, int):
        raise ValueError(f"chunk_count must be an integer, got {chunk_count!r}")
    if not 0 <= chunk_count < _MAX_COUNT:
        raise ValueError(f"chunk_count out of range: {chunk_count}")
    return chunk_count


def new_nonce() -> bytes:
    """A fresh secret sampling nonce (``NONCE_BYTES`` random bytes)."""
    return secrets.token_bytes(NONCE_BYTES)


def sample_seed(input_root: bytes, output_root: bytes, nonce: bytes) -> bytes:
    """The 32-byte sample seed for a pair of committed roots and a nonce."""
    for name, value in (("input_root", input_root), ("output_root", output_root)):
        if len(value) != 32:
            raise ValueError(f"{name} must be 32 raw bytes, got {len(value)}")
    if not nonce:
        raise ValueError("nonce must not be empty")
    return hashlib.sha256(SEED_TAG + input_root + output_root + nonce).digest()


def _words(seed: bytes) -> Iterator[int]:
    """The procedure's stream of unsigned 64-bit words (step 2)."""
    counter = 0
    while True:
        yield from _WORDS.unpack(hashlib.sha256(seed + _U64.pack(counter)).digest())
        counter += 1


def _uniform(words: Iterator[int], m: int) -> int:
    """A uniform integer in ``[0, m)`` by rejection sampling (step 3)."""
    limit = 2**64 - (2**64 % m)
    for word in words:
        if word < limit:
            return word % m
    raise AssertionError("the word stream is infinite")  # pragma: no cover


def draw_indices(seed: bytes, k: int, chunk_count: int) -> list[int]:
    """The ``k`` distinct chunk indices, ascending, that ``seed`` selects out of ``chunk_count``."""
    n = _check_count(chunk_count)
    if len(seed) != 32:
        raise ValueError(f"seed must be 32 bytes, got {len(seed)}")
    if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k <= n:
        raise ValueError(f"k must be an integer in [0, {n}], got {k!r}")
    words = _words(seed)
    swapped: dict[int, int] = {}  # sparse Fisher-Yates: a[x] == swapped.get(x, x)
    chosen: list[int] = []
    for i in range(k):
        j = i + _uniform(words, n - i)
        chosen.append(swapped.get(j, j))
        swapped[j] = swapped.get(i, i)
    return sorted(chosen)


def sample_size(rate: float, chunk_count: int) -> int:
    """How many chunks a rate samples: ``min(n, max(1, ceil(rate * n)))``, exactly."""
    n = _check_count(chunk_count)
    exact = _exact(rate)
    if not 0 < exact <= 1:
        raise ValueError(f"sample rate must be in (0, 1], got {rate!r}")
    return min(n, max(1, math.ceil(exact * n)))


@dataclass(frozen=True)
class AutoRate:
    """A deterrence-derived sample rate with every input that produced it."""

    reward: float
    penalty: float
    cost: float
    collusion: float
    bound: float
    margin: float
    rate: float

    @property
    def deterrent(self) -> bool:
        """Whether the rate exceeds the bound (false when even p = 1 cannot deter)."""
        return _exact(self.rate) > _deterrence_bound(
            self.reward, self.penalty, self.cost, self.collusion
        )

    def as_dict(self) -> dict[str, Any]:
        """The receipt form ``sampling.auto``."""
        return {
            "reward": self.reward,
            "penalty": self.penalty,
            "cost": self.cost,
            "collusion": self.collusion,
            "bound": self.bound,
            "margin": self.margin,
            "deterrent": self.deterrent,
        }


def _deterrence_bound(reward: float, penalty: float, cost: float, collusion: float) -> Fraction:
    r_plus_s = _exact(reward) + _exact(penalty)
    share = _exact(collusion)
    if r_plus_s <= 0 or _exact(reward) < 0 or _exact(penalty) < 0:
        raise ValueError("reward and penalty must be >= 0 with reward + penalty > 0")
    if not 0 <= share < 1:
        raise ValueError(f"collusion must be in [0, 1), got {collusion!r}")
    if _exact(cost) < 0:
        raise ValueError(f"cost must be >= 0, got {cost!r}")
    return _exact(cost) / ((1 - share) * r_plus_s)


def auto_rate(reward: float, penalty: float, cost: float, collusion: float) -> AutoRate:
    """The smallest grid rate above the deterrence bound (with the margin), capped at 1."""
    bound = _deterrence_bound(reward, penalty, cost, collusion)
    steps = math.floor(bound * (1 + AUTO_MARGIN) * AUTO_GRID) + 1
    rate = min(Fraction(1), Fraction(steps, AUTO_GRID))
    return AutoRate(
        reward=float(reward),
        penalty=float(penalty),
        cost=float(cost),
        collusion=float(collusion),
        bound=float(bound),
        margin=float(AUTO_MARGIN),
        rate=float(rate),
    )


@dataclass(frozen=True)
class EscapeEstimate:
    """The chance that faking a fraction of the chunks goes unnoticed."""

    fraction: float
    faked_chunks: int
    probability: float
    approximation: float

    def as_dict(self) -> dict[str, Any]:
        """The receipt form (one entry of ``sampling.escape``)."""
        return {
            "fraction": self.fraction,
            "faked_chunks": self.faked_chunks,
            "probability": self.probability,
            "approximation": self.approximation,
        }


def escape_estimates(rate: float, k: int, chunk_count: int) -> list[EscapeEstimate]:
    """Escape probabilities for 1 % and 10 % faked chunks when ``k`` of them are replayed."""
    n = _check_count(chunk_count)
    estimates = []
    for fraction in ESCAPE_FRACTIONS:
        faked = min(n, max(1, math.ceil(_exact(fraction) * n)))
        probability = 1.0
        for i in range(faked):
            remaining = n - k - i
            if remaining <= 0:
                probability = 0.0
                break
            probability *= remaining / (n - i)
        approximation = (1.0 - float(rate)) ** (fraction * n)
        estimates.append(EscapeEstimate(fraction, faked, probability, approximation))
    return estimates


@dataclass(frozen=True)
class SamplingPlan:
    """How a job of ``chunk_count`` chunks is sampled: the rate used, ``k``, auto inputs."""

    rate: float
    k: int
    chunk_count: int
    auto: AutoRate | None = None

    def draw(self, input_root: bytes, output_root: bytes, nonce: bytes) -> list[int]:
        """The sampled chunk indices for these committed roots and nonce."""
        return draw_indices(sample_seed(input_root, output_root, nonce), self.k, self.chunk_count)

    def escape(self) -> list[EscapeEstimate]:
        """Escape probabilities of this plan (see :func:`escape_estimates`)."""
        return escape_estimates(self.rate, self.k, self.chunk_count)


def resolve_sampling(spec_verification: Mapping[str, Any], chunk_count: int) -> SamplingPlan:
    """The sampling plan for a job, from a spec's ``verification`` section."""
    requested = spec_verification.get("sample_rate", 0.1)
    auto: AutoRate | None = None
    if requested == "auto":
        try:
            auto = auto_rate(
                spec_verification["reward"],
                spec_verification["penalty"],
                spec_verification["cost"],
                spec_verification["collusion"],
            )
        except KeyError as exc:
            raise ValueError(f'sample_rate "auto" needs verification.{exc.args[0]}') from None
        rate = auto.rate
    else:
        rate = float(requested)
    return SamplingPlan(rate, sample_size(rate, chunk_count), chunk_count, auto)
