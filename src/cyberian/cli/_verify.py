"""``cyberian-prove --verify``: ask a verifier to certify a local run, then check its receipt.

The local run's per-block output commitments (blocks of the spec's
``verification.vaas_block`` inputs) are claimed at ``POST /verify`` in the
spec dialect, so the verifier re-executes exactly the spec that was proven.
A 200 brings a signed ``vaas`` receipt, which is saved and then verified
offline here -- signature against the server's published keys, every root,
and that it certifies *this* run (spec hash, input count, our block
commitments). The keys document the check used (the verifier's ``GET
/keys``) is saved beside the receipt (:func:`keys_file_for`), with the
receipt's transparency-log bundle, checked (:func:`log_file_for`), and the
``cyberian receipt verify`` command that repeats the check offline, later,
without the verifier, is printed. A 422 means the verifier computed something else: exit 1,
naming the first block that differs. The claim carries this run's environment
manifest, so a verifier of another CPU class refuses it up front (409
``cpu_class_mismatch``), which is reported with both classes: exit 2.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import click

from .._text import clip
from ..client._constants import API_KEY_ENV
from ..client._credentials import configured_base_url, resolve_api_key
from ..exceptions import (
    ApiError,
    AuthError,
    CpuClassMismatchError,
    CyberianError,
    NetworkError,
    QuotaError,
    RateLimitError,
    ServiceBusyError,
    TrialExpiredError,
    VerificationFailedError,
)
from ..prover import Proof
from ..receipts.units import units_phrase
from ..spec import Spec
from ._embedded import EmbeddedVerifier

__all__ = ["Verifier", "certify", "keys_file_for", "later_command", "log_file_for"]

_REQUEST_TIMEOUT = 3600.0
_REFUSALS = (AuthError, TrialExpiredError, QuotaError, RateLimitError, ServiceBusyError, ApiError)
"""Answers of a verifier that will not take the claim (bad key, over quota, busy, ...)."""


@dataclass(frozen=True)
class Verifier:
    """Where to send the claim: a URL and an API key (the key never printed)."""

    url: str
    api_key: str
    embedded: EmbeddedVerifier | None = None

    def __repr__(self) -> str:
        return f"Verifier(url={self.url!r}, embedded={self.embedded is not None})"


def remote_verifier(server: str | None) -> Verifier | None:
    """The verifier named by ``--server`` or the client's base-URL variable (None: use the
    embedded one), with the API key the client would use; :class:`AuthError` without one."""
    url = configured_base_url(server)
    if url is None:
        return None
    key = resolve_api_key(None, remedy=f"set {API_KEY_ENV} to an API key of the verifier at {url}")
    return Verifier(url, key)


def keys_file_for(receipt_path: Path) -> Path:
    """Where the issuer's keys document is saved beside a receipt: ``r.json`` -> ``r.keys.json``.

    A receipt name without the ``.json`` suffix gets ``.keys.json`` appended.
    """
    if receipt_path.suffix == ".json":
        return receipt_path.with_suffix(".keys.json")
    return receipt_path.with_name(receipt_path.name + ".keys.json")


def log_file_for(receipt_path: Path) -> Path:
    """Where the receipt's log bundle is saved beside it: ``r.json`` -> ``r.log.json``.

    A receipt name without the ``.json`` suffix gets ``.log.json`` appended.
    """
    if receipt_path.suffix == ".json":
        return receipt_path.with_suffix(".log.json")
    return receipt_path.with_name(receipt_path.name + ".log.json")


def later_command(receipt_path: Path, keys_path: Path, rows_path: Path | None,
                  *, log: bool = False) -> str:
    """The shell command that checks the saved receipt (and rows, and with ``log`` its saved
    log bundle) offline, quoted for a shell."""
    words = ["cyberian", "receipt", "verify", str(receipt_path), *(["--log"] if log else []),
             "--key", str(keys_path)]
    if rows_path is not None:
        words += ["--embeddings", str(rows_path)]
    return shlex.join(words)


def _not_verified(reason: str, kept: str) -> NoReturn:
    click.echo(f"NOT VERIFIED: {reason}" + (f"; {kept}" if kept else ""), err=True)
    raise SystemExit(1)


def _claim(client: Any, spec: Spec, texts: Sequence[str], proof: Proof, kept: str) -> Any:
    try:
        return client.verify_outputs(spec_yaml=spec.to_yaml(portable=True),
                                     input_texts=list(texts),
                                     claimed_output_commitments=list(proof.block_commitments),
                                     environment=proof.manifest)
    except CpuClassMismatchError as exc:
        raise CyberianError(f"the verifier cannot check this run: {exc.message}",
                            status_code=exc.status_code, body=exc.body) from None
    except VerificationFailedError as exc:
        body = exc.body if isinstance(exc.body, dict) else {}
        reason = body.get("reason") or (exc.errors[0] if exc.errors else exc.message)
        _not_verified(f"the verifier disagrees: {reason}", kept)


def _own_checks(receipt: dict[str, Any], spec: Spec, proof: Proof,
                blocks: Sequence[str]) -> list[str]:
    problems = []
    if receipt.get("spec_hash") != spec.spec_hash:
        problems.append(f"spec_hash {receipt.get('spec_hash')} is not ours ({spec.spec_hash})")
    if receipt.get("input_count") != proof.input_count:
        problems.append(f"input_count {receipt.get('input_count')} != {proof.input_count}")
    certified = [chunk.get("output_commitment") for chunk in receipt.get("chunks", [])]
    if certified != list(blocks):
        problems.append("the certified block commitments are not the ones we claimed")
    return problems


def _save_log_bundle(client: Any, receipt: dict[str, Any], document: Any, path: Path,
                     url: str, *, write: Callable[[Path, Any], None],
                     kept: str) -> tuple[Path, str] | None:
    """Fetch, check and save the receipt's log bundle (``None``: the verifier has no log).

    Returns where it was saved and what it proves (``entry i of n, checkpoint ...``).
    """
    from ..client._log import log_identity_of, op_bundle  # noqa: PLC0415
    from ..exceptions import TlogError  # noqa: PLC0415
    from ..tlog import verify_bundle  # noqa: PLC0415

    try:
        identity = log_identity_of(document)
    except ValueError as exc:
        raise CyberianError(f"the verifier at {url} publishes an unusable log key: "
                            f"{clip(str(exc), 300)}") from None
    if identity is None:
        return None  # a verifier without a transparency log
    try:
        bundle = client._run(op_bundle(client, receipt, identity))
        checkpoint, inclusion = verify_bundle(receipt, bundle, [identity.key])
    except TlogError as exc:
        _not_verified(f"the verifier's log does not prove the receipt saved to {path}: "
                      f"{clip(exc.message, 300)}", kept)
    except ApiError as exc:
        raise CyberianError(f"cannot fetch the log proof of the receipt saved to {path} from "
                            f"the verifier at {url}: {clip(exc.message, 300)}",
                            status_code=exc.status_code, body=exc.body) from None
    log_path = log_file_for(path)
    write(log_path, bundle)
    return log_path, (f"entry {inclusion.index} of {checkpoint.size}, checkpoint "
                      f"{checkpoint.root.hex()[:16]} signed by {checkpoint.origin}")


def certify(spec: Spec, texts: Sequence[str], proof: Proof, verifier: Verifier,
            receipt_path: Path | None, *, write: Callable[[Path, Any], None],
            prove_seconds: float, kept: str = "", rows_path: Path | None = None) -> None:
    """Claim ``proof`` at the verifier, save and check the receipt, print a summary.

    The verifier's keys document and the receipt's log bundle (when the
    verifier keeps a log) are saved beside the receipt; the printed command
    checks them all (and ``rows_path``, the embeddings written) offline.
    ``kept`` (what was written of the local proof) ends a NOT VERIFIED line.
    """
    from ..client import Client  # noqa: PLC0415
    from ..client._responses import trusted_keys_of  # noqa: PLC0415

    blocks = list(proof.block_commitments)
    started = time.perf_counter()
    with Client(verifier.api_key, base_url=verifier.url, timeout=_REQUEST_TIMEOUT,
                max_retries=2) as client:
        try:
            receipt = _claim(client, spec, texts, proof, kept)
        except NetworkError as exc:
            raise CyberianError(f"cannot reach the verifier at {verifier.url}: "
                                f"{clip(exc.message, 300)}") from None
        except _REFUSALS as exc:
            raise CyberianError(f"the verifier at {verifier.url} refused the claim: "
                                f"{clip(exc.message, 300)}", status_code=exc.status_code,
                                body=exc.body) from None
        verify_seconds = time.perf_counter() - started
        path = receipt_path or Path(f"{receipt['receipt_id']}.json")
        write(path, receipt)
        checked = time.perf_counter()
        try:
            document = client.get_keys()  # what verify_receipt_offline would fetch
            trusted = trusted_keys_of(document)
        except ApiError as exc:  # /keys unreachable, refused or unusable
            raise CyberianError(f"cannot check the receipt saved to {path} against the keys "
                                f"of the verifier at {verifier.url}: {exc.message}",
                                status_code=exc.status_code, body=exc.body) from None
        keys_path = keys_file_for(path)
        write(keys_path, document)
        logged = _save_log_bundle(client, receipt, document, path, verifier.url, write=write,
                                  kept=kept)
        # Signature against the keys the verifier publishes, every root.
        verified = client.verify_receipt_offline(receipt, keys=trusted)
    problems = _own_checks(receipt, spec, proof, blocks)
    if problems:
        _not_verified("; ".join(problems), kept)
    check_seconds = time.perf_counter() - checked
    certified = units_phrase("vaas", len(blocks), receipt["chunk_size"])
    click.echo(f"verified           yes: {proof.input_count} texts in {certified}, "
               "re-executed and matched")
    click.echo(f"receipt            {receipt['receipt_id']} -> {path}")
    click.echo(f"keys               {keys_path} (the issuer's public keys: the verifier's "
               "GET /keys)")
    if logged is None:
        click.echo("log                none: the verifier keeps no transparency log")
    else:
        click.echo(f"log                {logged[0]} ({logged[1]})")
    click.echo(f"roots              input {receipt['input_root']}")
    click.echo(f"                   output {receipt['output_root']}")
    click.echo(f"                   proof {receipt['proof_root']}")
    click.echo(f"issuer             {verified.keyid} ({verifier.url}"
               f"{', embedded' if verifier.embedded else ''})")
    start = verifier.embedded.started_seconds if verifier.embedded else 0.0
    click.echo(f"timing             prove {prove_seconds:.2f} s, verifier start {start:.2f} s "
               f"(in parallel with the prove), re-execution + receipt {verify_seconds:.2f} s, "
               f"offline check {check_seconds:.3f} s")
    later = later_command(path, keys_path, rows_path, log=logged is not None)
    click.echo(f"check it later     {later}")
