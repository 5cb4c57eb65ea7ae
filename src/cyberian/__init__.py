"""cyberian: self-hosted verified inference.

Public API only; heavy modules (ONNX Runtime, the HTTP client) load on first use.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from ._version import __version__
from .exceptions import (
    ApiError,
    AuthError,
    CyberianError,
    JobFailedError,
    NetworkError,
    QuotaError,
    RateLimitError,
    ServiceBusyError,
    TrialExpiredError,
    VerificationFailedError,
)

__all__ = [
    "ApiError",
    "AsyncClient",
    "AsyncCyberian",
    "AuthError",
    "Client",
    "Cyberian",
    "CyberianError",
    "JobFailedError",
    "JobResult",
    "NetworkError",
    "Prover",
    "QuotaError",
    "RateLimitError",
    "ServiceBusyError",
    "Spec",
    "TrialExpiredError",
    "VerificationFailedError",
    "__version__",
    "load_spec",
    "verify_receipt",
]

_LAZY = {
    "AsyncClient": "cyberian.client",
    "AsyncCyberian": "cyberian.client",
    "Client": "cyberian.client",
    "Cyberian": "cyberian.client",
    "JobResult": "cyberian.client",
    "Prover": "cyberian.prover",
    "Spec": "cyberian.spec",
    "load_spec": "cyberian.spec",
    "verify_receipt": "cyberian.receipts",
}

if TYPE_CHECKING:
    from .client import AsyncClient, AsyncCyberian, Client, Cyberian, JobResult
    from .prover import Prover
    from .receipts import verify_receipt
    from .spec import Spec, load_spec


def __getattr__(name: str) -> Any:
    """Load heavy public names on first access."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'cyberian' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
