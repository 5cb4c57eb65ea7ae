"""Every error cyberian raises, in one tree rooted at :class:`CyberianError`.

Catch hierarchy::

    CyberianError                    base; .status_code, .body, .exit_code (2)
    ├── SpecError                    a CES document is invalid (names the field)
    │   ├── PinMismatchError         a pinned file hashes to something else
    │   └── EngineDriftError         installed engine differs from runtime.version
    ├── InputError                   unreadable / empty / malformed TEXTS input
    ├── ModelBuildError              weights missing or the build failed
    ├── FileHashMismatchError        a file kept under a SHA-256 hashes to something else
    ├── MerkleProofError             an RFC 9162 proof did not verify
    ├── TlogError                    a transparency-log checkpoint, proof or bundle failed (exit 1)
    ├── ReceiptVerificationError     offline receipt check failed (exit 1)
    ├── GoldenMismatchError          per-chunk commitments differ from a golden file (exit 1)
    ├── AuthError                    401 / 403, or a malformed key
    ├── TrialExpiredError            402 trial_expired
    ├── QuotaError                   402 quota_exceeded / tier_required, 413
    ├── RateLimitError               429; .retry_after_sec
    ├── ServiceBusyError             503; .retry_after_sec
    ├── JobFailedError               a job ended FAILED while waiting
    ├── VerificationFailedError      422 from /verify, or an invalid receipt (exit 1)
    └── ApiError                     any other 4xx / 5xx
        ├── CpuClassMismatchError    409 cpu_class_mismatch from /verify; .claimant_class,
        │                            .verifier_class
        └── NetworkError             no HTTP response at all (connect, read, DNS)

The client-side names and constructor signatures match the released
``cyberian-client`` packages, so code written against them keeps working.
``exit_code`` is what the command-line tools exit with when the error reaches
them: 2 for usage / spec / input / connection problems, 1 when something was
checked and found false.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "ApiError",
    "AuthError",
    "CpuClassMismatchError",
    "CyberianError",
    "EngineDriftError",
    "FileHashMismatchError",
    "GoldenMismatchError",
    "InputError",
    "JobFailedError",
    "MerkleProofError",
    "ModelBuildError",
    "NetworkError",
    "PinMismatchError",
    "QuotaError",
    "RateLimitError",
    "ReceiptVerificationError",
    "ServiceBusyError",
    "SpecError",
    "TlogError",
    "TrialExpiredError",
    "VerificationFailedError",
]


class CyberianError(Exception):
    """Base class of every cyberian error (core, server-facing and client)."""

    exit_code: ClassVar[int] = 2

    def __init__(self, message: str, *, status_code: int | None = None, body: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.body = body


class SpecError(CyberianError):
    """A CES document is invalid; the message starts with the offending field path."""

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path


class PinMismatchError(SpecError):
    """A file named by a spec does not hash to its pinned SHA-256."""

    def __init__(self, what: str, file: str, expected: str, actual: str) -> None:
        super().__init__(
            f"{file} has SHA-256 {actual}, but the spec pins {expected}",
            path=f"{what}.sha256",
        )
        self.file = file
        self.expected = expected
        self.actual = actual


class EngineDriftError(SpecError):
    """The installed inference engine is not the version the spec pins."""

    def __init__(self, pinned: str, installed: str) -> None:
        super().__init__(
            f"the spec pins onnxruntime {pinned} but {installed} is installed; "
            "results may differ bit for bit (pass --allow-engine-drift to run anyway; "
            "the drift is then recorded in the manifest)",
            path="runtime.version",
        )
        self.pinned = pinned
        self.installed = installed


class InputError(CyberianError):
    """The texts to embed could not be read (missing, empty, not UTF-8, bad JSONL)."""


class ModelBuildError(CyberianError):
    """A model could not be built (weights unavailable or inconsistent)."""


class FileHashMismatchError(CyberianError):
    """A file kept under a SHA-256 (model cache, model store, a link to a pin) hashes otherwise."""

    def __init__(self, file: str, expected: str, actual: str) -> None:
        super().__init__(f"{file} has SHA-256 {actual}, not the {expected} it is kept under")
        self.file = file
        self.expected = expected
        self.actual = actual


class MerkleProofError(CyberianError):
    """An RFC 9162 inclusion or consistency proof failed to verify."""

    exit_code: ClassVar[int] = 1


class TlogError(CyberianError):
    """A transparency-log checkpoint, proof, key or bundle is malformed or does not verify."""

    exit_code: ClassVar[int] = 1


class ReceiptVerificationError(CyberianError):
    """A receipt failed offline verification; ``failed`` lists each failed check by name."""

    exit_code: ClassVar[int] = 1

    def __init__(self, failed: dict[str, str]) -> None:
        names = ", ".join(failed) or "unknown"
        super().__init__(f"receipt verification failed: {names}")
        self.failed = dict(failed)


class GoldenMismatchError(CyberianError):
    """Per-chunk output commitments differ from a stored golden file."""

    exit_code: ClassVar[int] = 1


class AuthError(CyberianError):
    """The Bearer key was missing, malformed, invalid or revoked (401 / 403)."""


class TrialExpiredError(CyberianError):
    """The account's trial has ended and the free tier does not allow the request (402)."""


class QuotaError(CyberianError):
    """A period, daily or per-request limit was exceeded, or the tier lacks a feature."""


class RateLimitError(CyberianError):
    """The per-minute rate limit was hit; retry after ``retry_after_sec`` seconds (429)."""

    def __init__(
        self,
        message: str,
        *,
        retry_after_sec: float = 60,
        status_code: int | None = None,
        body: Any = None,
    ) -> None:
        super().__init__(message, status_code=status_code, body=body)
        self.retry_after_sec = retry_after_sec


class ServiceBusyError(CyberianError):
    """The server's job queue is full; retry after ``retry_after_sec`` seconds (503)."""

    def __init__(
        self,
        message: str,
        *,
        retry_after_sec: float = 30,
        status_code: int | None = None,
        body: Any = None,
    ) -> None:
        super().__init__(message, status_code=status_code, body=body)
        self.retry_after_sec = retry_after_sec


class JobFailedError(CyberianError):
    """A job reached FAILED while the client was waiting for it."""

    exit_code: ClassVar[int] = 1

    def __init__(self, job_id: str, body: Any = None) -> None:
        error = body.get("error") if isinstance(body, dict) else None
        detail = f": {error}" if error else ""
        super().__init__(f"Job {job_id} ended in FAILED state{detail}", body=body)
        self.job_id = job_id


class VerificationFailedError(CyberianError):
    """A verifier disagreed: /verify answered 422, or a receipt check was not valid."""

    exit_code: ClassVar[int] = 1

    def __init__(
        self,
        receipt_id: str,
        checks: dict[str, bool],
        errors: list[Any],
        *,
        status_code: int | None = None,
        body: Any = None,
    ) -> None:
        super().__init__(
            f"Receipt {receipt_id} failed verification: {errors}",
            status_code=status_code,
            body=body,
        )
        self.receipt_id = receipt_id
        self.checks = checks
        self.errors = errors


class ApiError(CyberianError):
    """Any other HTTP error from the API (and the base of :class:`NetworkError`)."""


class CpuClassMismatchError(ApiError):
    """The verifier runs on a CPU class that does not reproduce the claimant's bit for bit."""

    def __init__(self, message: str, *, status_code: int | None = 409,
                 body: Any = None) -> None:
        super().__init__(message, status_code=status_code, body=body)
        fields = body if isinstance(body, dict) else {}
        self.claimant_class: str | None = fields.get("claimant_class")
        self.verifier_class: str | None = fields.get("verifier_class")


class NetworkError(ApiError):
    """No HTTP response was received: connection refused, DNS, timeout, dropped link."""
