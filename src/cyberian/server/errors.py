"""The server's error vocabulary: what went wrong, as the API.md error codes name it.

Every refusal is an :class:`ApiProblem`: an error code, a human message and
extra body fields. Domain code raises the subclass that says what happened
(:class:`QuotaExceededError`, :class:`UnauthorizedError`,
:class:`ServiceBusyError`, ...); the type alone fixes the status it answers
with and the headers it carries, so no raise site names an HTTP status or
header. Nothing here knows the web framework: :mod:`cyberian.server.http.errors`
turns any of these (and the framework's own failures) into the
``{"error": <code>, "message": <text>, ...}`` response.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

__all__ = [
    "ApiProblem",
    "CommitmentCountMismatchError",
    "CpuClassMismatchError",
    "ForbiddenError",
    "IdempotencyKeyReusedError",
    "InvalidRequestError",
    "InvalidSpecError",
    "JobFailedError",
    "JobNotSettledError",
    "ModelInUseError",
    "ModelNameTakenError",
    "ModelNotFoundError",
    "NotFoundError",
    "QuotaExceededError",
    "RateLimitedError",
    "RegistrationDisabledError",
    "RequestTooLargeError",
    "ServerError",
    "ServiceBusyError",
    "TierRequiredError",
    "TokenIdsNotSupportedError",
    "TrialExpiredError",
    "UnauthorizedError",
    "VerificationFailedError",
    "bad_request",
    "invalid_spec",
    "not_found",
]


class ApiProblem(Exception):  # noqa: N818 - an answer, not only an error
    """An error answer: status, API error code, message, extra body fields and headers."""

    def __init__(self, status: int, code: str, message: str, *,
                 headers: Mapping[str, str] | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})
        self.extra = extra

    def body(self) -> dict[str, Any]:
        """The JSON error body."""
        return {"error": self.code, "message": self.message, **self.extra}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.status}, {self.code!r}, {self.message!r})"


class ServerError(ApiProblem):
    """A refusal by the server's own rules: its type fixes the code and the status."""

    STATUS: ClassVar[int] = 400
    CODE: ClassVar[str] = "invalid_request"

    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(self.STATUS, self.CODE, message, headers=self._headers(extra), **extra)

    @classmethod
    def _headers(cls, extra: Mapping[str, Any]) -> dict[str, str]:
        """The headers an answer of this type carries (none by default)."""
        return {}


class _RetryLaterError(ServerError):
    """A refusal that says when to try again (``retry_after_sec``, echoed as ``Retry-After``)."""

    def __init__(self, message: str, *, retry_after_sec: int) -> None:
        super().__init__(message, retry_after_sec=retry_after_sec)

    @classmethod
    def _headers(cls, extra: Mapping[str, Any]) -> dict[str, str]:
        return {"Retry-After": str(extra["retry_after_sec"])}


class InvalidRequestError(ServerError):
    """The request is malformed (``invalid_request``), naming the field at fault if one is."""

    def __init__(self, message: str, *, field: str | None = None, **extra: Any) -> None:
        if field is not None:
            extra["field"] = field
        super().__init__(message, **extra)


class TokenIdsNotSupportedError(InvalidRequestError):
    """``/v1`` only: token ids were sent where texts are needed (the tokenizer is proven)."""

    CODE = "token_ids_not_supported"


class InvalidSpecError(ServerError):
    """A client's CES text is invalid or names what this server lacks (``invalid_spec``)."""

    CODE = "invalid_spec"

    def __init__(self, message: str, *, field: str | None) -> None:
        super().__init__(message, field=field)


class CommitmentCountMismatchError(ServerError):
    """A VaaS request claims another number of block commitments than its inputs make."""

    CODE = "commitment_count_mismatch"


class UnauthorizedError(ServerError):
    """No valid API key was presented (``unauthorized``, with a Bearer challenge)."""

    STATUS = 401
    CODE = "unauthorized"

    @classmethod
    def _headers(cls, extra: Mapping[str, Any]) -> dict[str, str]:
        return {"WWW-Authenticate": "Bearer"}


class TierRequiredError(ServerError):
    """The account's tier lacks a feature (``tier_required``)."""

    STATUS = 402
    CODE = "tier_required"


class QuotaExceededError(ServerError):
    """The request would exceed the period or day chunk quota (``quota_exceeded``)."""

    STATUS = 402
    CODE = "quota_exceeded"


class TrialExpiredError(ServerError):
    """The trial has ended and the free tier refuses the request (``trial_expired``)."""

    STATUS = 402
    CODE = "trial_expired"


class ForbiddenError(ServerError):
    """The server's configuration does not allow this (``forbidden``)."""

    STATUS = 403
    CODE = "forbidden"


class RegistrationDisabledError(ForbiddenError):
    """Open self-registration is off on this server (``registration_disabled``)."""

    CODE = "registration_disabled"


class NotFoundError(ServerError):
    """No such resource (also another account's: ids leak nothing)."""

    STATUS = 404
    CODE = "not_found"


class ModelNotFoundError(ServerError):
    """``/v1`` only: no model of that id for this account (``model_not_found``, as OpenAI)."""

    STATUS = 404
    CODE = "model_not_found"

    def __init__(self, message: str) -> None:
        super().__init__(message, field="model")


class IdempotencyKeyReusedError(ServerError):
    """An ``Idempotency-Key`` came again with another request body."""

    STATUS = 409
    CODE = "idempotency_key_reused"


class ModelNameTakenError(ServerError):
    """The account already has a live model of this name with other bytes."""

    STATUS = 409
    CODE = "model_name_taken"


class ModelInUseError(ServerError):
    """An uploaded model cannot be deleted while an unfinished job uses it."""

    STATUS = 409
    CODE = "model_in_use"


class CpuClassMismatchError(ServerError):
    """A claim made on a CPU class this verifier cannot reproduce bit for bit."""

    STATUS = 409
    CODE = "cpu_class_mismatch"


class JobNotSettledError(ServerError):
    """A job's output is asked for before the job is SETTLED."""

    STATUS = 409
    CODE = "job_not_settled"


class RequestTooLargeError(ServerError):
    """The request exceeds a per-request limit (``request_too_large``)."""

    STATUS = 413
    CODE = "request_too_large"


class VerificationFailedError(ServerError):
    """A VaaS block's output differs from what the caller claimed."""

    STATUS = 422
    CODE = "verification_failed"


class JobFailedError(ServerError):
    """A job behind a synchronous answer ended FAILED or REFUNDED: nothing is certified."""

    STATUS = 502
    CODE = "job_failed"


class RateLimitedError(_RetryLaterError):
    """More requests per minute than the tier allows (``rate_limited``)."""

    STATUS = 429
    CODE = "rate_limited"


class ServiceBusyError(_RetryLaterError):
    """The server's queue is full (``service_busy``)."""

    STATUS = 503
    CODE = "service_busy"


def bad_request(message: str, *, field: str | None = None) -> InvalidRequestError:
    """An ``invalid_request`` refusal, naming the offending field when there is one."""
    return InvalidRequestError(message, field=field)


def invalid_spec(message: str, *, field: str | None) -> InvalidSpecError:
    """An ``invalid_spec`` refusal naming the spec field at fault."""
    return InvalidSpecError(message, field=field)


def not_found(what: str) -> NotFoundError:
    """A ``not_found`` refusal (also for another account's resources: ids leak nothing)."""
    return NotFoundError(f"{what} not found")
