"""The package root exposes exactly its documented public API, loading heavy parts lazily."""

from __future__ import annotations

import subprocess
import sys

import cyberian
from cyberian import _version, exceptions, receipts


def test_all_names_resolve() -> None:
    for name in cyberian.__all__:
        assert getattr(cyberian, name) is not None


def test_all_lists_the_public_api() -> None:
    expected = {"Client", "AsyncClient", "Cyberian", "AsyncCyberian", "JobResult", "Prover",
                "Spec", "load_spec", "verify_receipt", "__version__"}
    client_errors = {"ApiError", "AuthError", "CyberianError", "JobFailedError", "NetworkError",
                     "QuotaError", "RateLimitError", "ServiceBusyError", "TrialExpiredError",
                     "VerificationFailedError"}
    assert set(cyberian.__all__) == expected | client_errors
    assert client_errors <= set(exceptions.__all__)


def test_the_version_has_one_home() -> None:
    assert cyberian.__version__ == _version.__version__


def test_receipts_package_keeps_its_public_names() -> None:
    expected = {"BODY_FIELDS", "CHECKS", "EMPTY_ROOT", "KINDS", "PAYLOAD_TYPE", "RECEIPT_VERSION",
                "REPORT_CHECKS", "CheckResult", "ReplayRecord", "TrustedKeys", "VerifiedReceipt",
                "build_receipt_body", "canonical_body", "check_embeddings", "check_receipt",
                "chunk_inclusion_proof",
                "commitment_roots", "compute_receipt_hash", "from_dsse", "parse_receipt",
                "sign_receipt", "to_dsse", "verification_report", "verify_chunk_inclusion",
                "verify_receipt"}
    assert set(receipts.__all__) == expected
    assert all(getattr(receipts, name) is not None for name in expected)
    assert cyberian.verify_receipt is receipts.verify_receipt


def test_every_exception_derives_from_cyberian_error() -> None:
    for name in exceptions.__all__:
        assert issubclass(getattr(exceptions, name), exceptions.CyberianError)
    assert issubclass(exceptions.NetworkError, exceptions.ApiError)


def test_importing_cyberian_is_light() -> None:
    code = ("import sys, cyberian; "
            "print(*(m in sys.modules for m in ('onnxruntime', 'httpx', 'numpy', 'fastapi')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False"] * 4
