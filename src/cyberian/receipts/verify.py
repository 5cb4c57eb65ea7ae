"""Offline receipt verification: every check runs, each is named, none stops the others.

Checks (in order): ``format`` (shape and types of the body, no unknown
fields), ``version``, ``receipt_hash``, ``signature`` (Ed25519 over the DSSE
PAE with a *trusted* key), ``trusted_key`` (the signing keyid is trusted and
is the issuer's), ``chunks`` (entries well formed, indices 0..n-1 in order),
``counts`` (chunk_count vs chunks, input_count and chunk_size),
``input_root`` / ``output_root`` / ``proof_root`` (rebuilt from the entries,
aliases equal), ``sampling`` (seed, k and indices recomputed, auto rate and
escape figures recomputed) and ``replays`` (one matching record per sampled
chunk). With a ``spec`` a ``spec`` check compares the receipt's pins and
sampling rate with it. Public names are re-exported by :mod:`cyberian.receipts`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from ..exceptions import ReceiptVerificationError
from ..signing import PublicKey
from ..spec import Spec
from ._checks import CHECK_FUNCTIONS
from ._fields import CheckError, Context
from ._format import body_of, parse_json_strict

__all__ = [
    "CHECKS",
    "REPORT_CHECKS",
    "CheckResult",
    "TrustedKeys",
    "VerifiedReceipt",
    "check_receipt",
    "verification_report",
    "verify_receipt",
]

CHECKS: Final = (
    "format",
    "version",
    "receipt_hash",
    "signature",
    "trusted_key",
    "chunks",
    "counts",
    "input_root",
    "output_root",
    "proof_root",
    "sampling",
    "replays",
)
"""Every check, in the order they run and print (``spec`` follows when a spec is given)."""

REPORT_CHECKS: Final = ("receipt_hash", "input_root", "output_root", "proof_root", "signature")
"""The checks ``GET /receipts/{id}/verify`` reports (``signature`` includes ``trusted_key``)."""

TrustedKeys = PublicKey | Iterable[PublicKey] | Mapping[str, PublicKey]

_CHECK_ERRORS: Final = (ValueError, TypeError, KeyError, AttributeError, IndexError, OverflowError)


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one named check: ``ok`` and a human-readable detail."""

    name: str
    ok: bool
    detail: str = ""


@dataclass(frozen=True)
class VerifiedReceipt:
    """A receipt that passed every check, with what was found."""

    receipt: Mapping[str, Any]
    keyid: str
    kind: str
    replayed: bool
    checks: tuple[CheckResult, ...]

    @property
    def body(self) -> dict[str, Any]:
        """The signed body (the receipt without ``receipt_hash`` and ``signature``)."""
        return body_of(self.receipt)


def _trusted(keys: TrustedKeys) -> dict[str, PublicKey]:
    if isinstance(keys, PublicKey):
        keys = [keys]
    elif isinstance(keys, Mapping):
        keys = list(keys.values())
    trusted = {}
    for key in keys:
        if not isinstance(key, PublicKey):
            raise TypeError(f"trusted keys must be PublicKey objects, got {type(key).__name__}")
        trusted[key.keyid] = key  # the key's own id, never a label it was filed under
    return trusted


def _run(
    receipt: Mapping[str, Any] | str | bytes, trusted_keys: TrustedKeys, spec: Spec | None
) -> tuple[dict[str, Any] | None, dict[str, CheckResult]]:
    trusted = _trusted(trusted_keys)
    names = [*CHECKS, "spec"] if spec is not None else list(CHECKS)
    try:
        parsed = parse_json_strict(receipt) if isinstance(receipt, str | bytes) else receipt
        if not isinstance(parsed, Mapping):
            raise ValueError(f"a receipt must be a JSON object, got {type(parsed).__name__}")
    except ValueError as exc:
        unread = "not checked: unreadable receipt"
        results = {name: CheckResult(name, False, unread) for name in names}
        results["format"] = CheckResult("format", False, str(exc))
        return None, results
    ctx = Context(dict(parsed), body_of(parsed), trusted, spec)
    results = {}
    for name in names:
        try:
            results[name] = CheckResult(name, True, CHECK_FUNCTIONS[name](ctx))
        except CheckError as exc:
            results[name] = CheckResult(name, False, str(exc))
        except _CHECK_ERRORS as exc:  # fail closed on any shape the checks did not foresee
            results[name] = CheckResult(name, False, f"cannot check: {type(exc).__name__}: {exc}")
    return dict(parsed), results


def check_receipt(
    receipt: Mapping[str, Any] | str | bytes, trusted_keys: TrustedKeys, *, spec: Spec | None = None
) -> dict[str, CheckResult]:
    """Run every check without raising; one :class:`CheckResult` per check name."""
    return _run(receipt, trusted_keys, spec)[1]


def verify_receipt(
    receipt: Mapping[str, Any] | str | bytes, trusted_keys: TrustedKeys, *, spec: Spec | None = None
) -> VerifiedReceipt:
    """Verify a receipt offline against trusted keys (and optionally the spec it claims).

    Accepts the receipt as a mapping or as JSON text/bytes (parsed strictly).
    Raises :class:`ReceiptVerificationError` naming every failed check.
    """
    parsed, results = _run(receipt, trusted_keys, spec)
    failed = {name: result.detail for name, result in results.items() if not result.ok}
    if failed or parsed is None:
        raise ReceiptVerificationError(failed or {"format": "unreadable receipt"})
    kind = str(parsed["kind"])
    return VerifiedReceipt(
        receipt=parsed,
        keyid=str(parsed["signature"]["keyid"]),
        kind=kind,
        replayed=kind != "local",
        checks=tuple(results.values()),
    )


def verification_report(
    receipt: Mapping[str, Any] | str | bytes, trusted_keys: TrustedKeys, *, spec: Spec | None = None
) -> dict[str, Any]:
    """The ``GET /receipts/{id}/verify`` answer: ``{"valid", "checks", "errors"}``.

    ``checks`` holds exactly the five :data:`REPORT_CHECKS`; ``valid`` is true
    only when every check passed, and ``errors`` has one ``"name: reason"``
    line per failed check (any check, not only those five).
    """
    results = check_receipt(receipt, trusted_keys, spec=spec)
    checks = {name: results[name].ok for name in REPORT_CHECKS}
    checks["signature"] = results["signature"].ok and results["trusted_key"].ok
    errors = [f"{result.name}: {result.detail}" for result in results.values() if not result.ok]
    return {"valid": not errors, "checks": checks, "errors": errors}
