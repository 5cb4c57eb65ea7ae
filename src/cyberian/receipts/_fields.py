"""Receipt field validators, the shared check context and the ``format`` checks.

Every validator raises :class:`CheckError` with a message naming the field;
the runner in :mod:`cyberian.receipts.verify` turns it into a failed check.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from ..signing import PublicKey
from ..spec import Spec
from ._format import (
    BODY_FIELDS,
    KINDS,
    MAX_SAFE_INTEGER,
    RECEIPT_VERSION,
    UNSIGNED_FIELDS,
    canonical_body,
    hash_canonical,
)

_RFC3339_UTC: Final = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$")
_HEX: Final = re.compile(r"^[0-9a-f]*$")
_MAX_LISTED: Final = 4


class CheckError(Exception):
    """A check failed; the message says why (caught by the runner, never escapes)."""


def show(value: Any) -> str:
    """A short repr of a value for a message."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def listing(problems: list[str]) -> str:
    """Several problems in one line (the first few, then a count)."""
    more = len(problems) - _MAX_LISTED
    return "; ".join(problems[:_MAX_LISTED]) + (f"; and {more} more" if more > 0 else "")


def need(body: Mapping[str, Any], name: str) -> Any:
    """The field ``name``; CheckError if it is missing."""
    if name not in body:
        raise CheckError(f"{name} is missing")
    return body[name]


def as_int(value: Any, where: str, low: int = 0) -> int:
    """An integer in ``[low, 2^53)`` (bool and float refused)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not low <= value <= MAX_SAFE_INTEGER
    ):
        raise CheckError(f"{where} must be an integer >= {low} (below 2^53), got {show(value)}")
    return value


def as_number(value: Any, where: str) -> float:
    """A finite JSON number (bool refused)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise CheckError(f"{where} must be a finite number, got {show(value)}")
    return float(value)


def as_hex(value: Any, where: str, size: int = 32) -> str:
    """Lowercase hex of exactly ``size`` bytes."""
    if not isinstance(value, str):
        raise CheckError(f"{where} must be a hex string, got {show(value)}")
    if len(value) != 2 * size:
        raise CheckError(f"{where} has the wrong length ({len(value)} hex digits, want {2 * size})")
    if not _HEX.match(value):
        raise CheckError(f"{where} is not lowercase hex: {show(value)}")
    return value


def as_text(value: Any, where: str) -> str:
    """A non-empty identifier string of at most 256 characters."""
    if not isinstance(value, str) or not 0 < len(value) <= 256:
        raise CheckError(f"{where} must be a non-empty string of at most 256 characters")
    return value


def as_object(value: Any, where: str, keys: Iterable[str] | None = None) -> Mapping[str, Any]:
    """A JSON object, optionally with exactly the given keys."""
    if not isinstance(value, Mapping):
        raise CheckError(f"{where} must be an object, got {type(value).__name__}")
    if keys is not None:
        wanted = set(keys)
        missing, extra = sorted(wanted - set(value)), sorted(set(value) - wanted)
        if missing or extra:
            raise CheckError(f"{where}: missing {missing}, unexpected {extra}")
    return value


def as_list(value: Any, where: str) -> list[Any]:
    """A JSON array."""
    if not isinstance(value, list):
        raise CheckError(f"{where} must be a list, got {type(value).__name__}")
    return value


def as_ints(value: Any, where: str) -> list[int]:
    """A JSON array of safe non-negative integers."""
    return [as_int(item, f"{where}[{i}]") for i, item in enumerate(as_list(value, where))]


def close(a: float, b: float) -> bool:
    """Equal up to float rounding (figures another implementation may round differently)."""
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


@dataclass
class Context:
    """What every check looks at: the receipt, its body, the trusted keys, the spec."""

    receipt: Mapping[str, Any]
    body: dict[str, Any]
    trusted: dict[str, PublicKey]
    spec: Spec | None
    _canonical: bytes | ValueError | None = field(default=None, init=False, repr=False)

    def canonical(self) -> bytes:
        """The body's canonical JSON, computed once; CheckError if it has none."""
        if self._canonical is None:
            try:
                self._canonical = canonical_body(self.body)
            except ValueError as exc:
                self._canonical = exc
        if isinstance(self._canonical, ValueError):
            raise CheckError(f"the body is {self._canonical}")
        return self._canonical


# -- format ---------------------------------------------------------------


def _validate_environment(value: Any, where: str, body: Mapping[str, Any]) -> None:
    env = as_object(value, where, ("executor", "replayer"))
    as_object(env["executor"], f"{where}.executor")
    if env["replayer"] is None:
        if body.get("kind") != "local":
            raise CheckError(f"{where}.replayer is null, but only a local receipt has no replayer")
    else:
        as_object(env["replayer"], f"{where}.replayer")


def _validate_timestamp(value: Any, where: str, body: Mapping[str, Any]) -> None:
    if not isinstance(value, str) or not _RFC3339_UTC.match(value):
        raise CheckError(f"{where} must be RFC 3339 UTC ending in Z, got {show(value)}")
    try:
        datetime.fromisoformat(value[:-1])
    except ValueError:
        raise CheckError(f"{where} is not a valid date and time: {value}") from None


def _validate_kind(value: Any, where: str, body: Mapping[str, Any]) -> None:
    if value not in KINDS:
        raise CheckError(f"{where} must be one of {', '.join(KINDS)}, got {show(value)}")


def _validate_version(value: Any, where: str, body: Mapping[str, Any]) -> None:
    if not isinstance(value, str):
        raise CheckError(f"{where} must be a string, got {show(value)}")


_Rule = Callable[[Any, str, Mapping[str, Any]], object]

_RULES: Final[dict[str, _Rule]] = {
    "version": _validate_version,
    "receipt_id": lambda v, w, b: as_text(v, w),
    "job_id": lambda v, w, b: as_text(v, w),
    "kind": _validate_kind,
    **{
        name: (lambda v, w, b: as_hex(v, w))
        for name in (
            "spec_hash",
            "model_sha256",
            "tokenizer_sha256",
            "input_root",
            "output_root",
            "proof_root",
            "inputs_root",
            "outputs_root",
            "verification_attestation",
        )
    },
    **{
        name: (lambda v, w, b: as_int(v, w, 1))
        for name in (
            "chunk_size",
            "chunk_count",
            "input_count",
            "dimensions",
        )
    },
    "chunks": lambda v, w, b: as_list(v, w),
    "replays": lambda v, w, b: as_list(v, w),
    "sampling": lambda v, w, b: as_object(v, w),
    "environment": _validate_environment,
    "issued_at": _validate_timestamp,
    "issuer": lambda v, w, b: as_hex(as_object(v, w, ("keyid",))["keyid"], f"{w}.keyid"),
    "executor_attestation_ids": lambda v, w, b: [
        as_hex(item, f"{w}[{i}]") for i, item in enumerate(as_list(v, w))
    ],
}


def check_format(ctx: Context) -> str:
    """``format``: every body field present and well typed, no unknown fields."""
    problems = []
    unknown = sorted(set(ctx.receipt) - set(BODY_FIELDS) - set(UNSIGNED_FIELDS))
    if unknown:
        problems.append(f"unknown fields {unknown}")
    for name in BODY_FIELDS:
        try:
            _RULES[name](need(ctx.body, name), name, ctx.body)
        except CheckError as exc:
            problems.append(str(exc))
    try:
        ctx.canonical()
    except CheckError as exc:
        problems.append(str(exc))
    if problems:
        raise CheckError(listing(problems))
    return f"receipt format v{RECEIPT_VERSION} fields"


def check_version(ctx: Context) -> str:
    """``version``: the format version this verifier knows."""
    version = need(ctx.body, "version")
    if version != RECEIPT_VERSION:
        known = RECEIPT_VERSION
        raise CheckError(f"unknown version {show(version)}; this verifier knows {known!r}")
    return f"version {RECEIPT_VERSION}"


def check_receipt_hash(ctx: Context) -> str:
    """``receipt_hash``: SHA-256 of the canonical body, as stated."""
    stated = as_hex(need(ctx.receipt, "receipt_hash"), "receipt_hash")
    computed = hash_canonical(ctx.canonical())
    if stated != computed:
        raise CheckError(f"receipt_hash {stated} does not match the body's hash {computed}")
    return computed
