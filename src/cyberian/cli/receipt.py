"""``cyberian receipt``: verify a receipt offline, show what it proves, or write the audit page.

``receipt verify RECEIPT.json (--key PUBKEY | --keys-url URL) [--embeddings ROWS] [--log]``
prints one line per check (``ok   name: detail`` / ``FAIL name: reason``) and
exits 0 when every check passed, 1 when any failed, 2 when the receipt, key
or embeddings file cannot be read or the keys URL cannot be fetched. A DSSE
envelope is accepted in place of the receipt JSON. With ``--embeddings`` an
``embeddings`` check also compares the rows with the receipt's per-chunk
(per-block, for ``vaas``) output commitments. ``--key`` takes a public key
or a saved ``/keys`` document, such as the ``<receipt>.keys.json`` that
``cyberian-prove --verify`` saves. With ``--log`` a ``log`` check also proves
the receipt is in the issuer's transparency log (:mod:`~cyberian.cli._receipt_log`).
``receipt page OUT.html`` writes the
browser audit page (:mod:`~cyberian.cli.receipt_page`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .._text import clip
from ..exceptions import CyberianError
from ..receipts.units import unit_name, units_phrase
from ._common import CyberianGroup, fail
from .receipt_page import page

if TYPE_CHECKING:
    import httpx
    import numpy.typing as npt

    from ..receipts import CheckResult
    from ..signing import PublicKey

__all__ = ["fetch_keys", "group"]


@click.group("receipt", cls=CyberianGroup)
def group() -> None:
    """Verify receipts offline, show what they prove, write the browser audit page."""


group.add_command(page)


def fetch_keys(url: str, *, transport: httpx.BaseTransport | None = None) -> dict[str, PublicKey]:
    """Trusted keys from a server's ``GET /keys`` (a bare server URL gets ``/keys`` appended).

    The client's :func:`~cyberian.client._keys.fetch_trusted_keys`, imported only when used.
    """
    from ..client._keys import fetch_trusted_keys  # noqa: PLC0415 - only this command needs HTTP

    return fetch_trusted_keys(url, transport=transport)


def _trusted_keys(key_file: Path | None, keys_url: str | None) -> dict[str, PublicKey]:
    from ..signing import load_trusted_keys  # noqa: PLC0415

    if key_file is not None and keys_url is None:
        try:
            return load_trusted_keys(key_file)
        except OSError as exc:
            fail(f"cannot read {key_file}: {exc.strerror or exc}")
        except ValueError as exc:
            fail(str(exc))
    if keys_url is not None and key_file is None:
        try:
            return fetch_keys(keys_url)
        except CyberianError as exc:
            code = exc.status_code
            said = code is None or code < 300 or exc.message.startswith("HTTP ")
            status = "" if said else f"HTTP {code}: "
            fail(f"cannot fetch trusted keys from {keys_url}: {status}{clip(exc.message, 300)}")
        except ValueError as exc:  # not an http(s) URL
            fail(f"cannot fetch trusted keys from {keys_url}: {clip(str(exc), 300)}")
    raise click.UsageError("give exactly one of --key or --keys-url")


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror or exc}")


def _unwrap(data: bytes, path: Path) -> Mapping[str, Any] | bytes:
    """The receipt, a DSSE envelope opened; exit 2 for what is no receipt at all.

    A receipt is a JSON object with the format field ``version`` (or a DSSE
    envelope, with ``payloadType``). JSON that is such an object but breaks
    the strict rules (duplicate keys, NaN, unsafe numbers) is a receipt
    tampered with, left for the verifier to report under ``format``.
    """
    from .._json import loads_json  # noqa: PLC0415
    from ..receipts import from_dsse, parse_receipt  # noqa: PLC0415

    try:
        document = loads_json(data)
    except ValueError as exc:  # not JSON, not UTF-8 / 16 / 32, or nested too deeply
        fail(f"{path} is not a receipt: not readable as JSON ({clip(str(exc), 200)})")
    if not isinstance(document, dict) or not {"version", "payloadType"} & document.keys():
        fail(f'{path} is not a receipt: not a JSON object with the format field "version" '
             "(nor a DSSE envelope)")
    try:
        parsed = parse_receipt(data)
    except ValueError:
        return data  # the verifier reports it under "format"
    return from_dsse(parsed) if "payloadType" in parsed else parsed


def _dimensions(receipt: Mapping[str, Any] | bytes) -> int | None:
    value = receipt.get("dimensions") if isinstance(receipt, Mapping) else None
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _rows(rows_file: Path | None,
          receipt: Mapping[str, Any] | bytes) -> npt.NDArray[Any] | CheckResult | None:
    """The rows of ``--embeddings`` (exit 2 if unreadable), or the failed check they make."""
    from ..receipts import CheckResult  # noqa: PLC0415
    from ._rows_file import NotRowsError, read_rows  # noqa: PLC0415

    if rows_file is None:
        return None
    try:
        return read_rows(rows_file, _dimensions(receipt))
    except NotRowsError as exc:
        return CheckResult("embeddings", False, str(exc))


def _embeddings_result(rows: npt.NDArray[Any] | CheckResult,
                       receipt: Mapping[str, Any] | bytes) -> CheckResult:
    from ..receipts import CheckResult, check_embeddings  # noqa: PLC0415

    if isinstance(rows, CheckResult):
        return rows
    if not isinstance(receipt, Mapping):
        return CheckResult("embeddings", False, "not checked: unreadable receipt")
    return check_embeddings(receipt, rows)


@group.command("verify")
@click.argument("receipt_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--key",
    "key_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The issuer's public key: PEM (.pub), base64 raw, or a saved /keys document "
         "(such as the <receipt>.keys.json cyberian-prove --verify saves).",
)
@click.option("--keys-url", help="A server's /keys URL (or its base URL) to fetch trusted keys.")
@click.option(
    "--embeddings",
    "rows_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also check that these rows are the ones the receipt commits to: a .npy file "
         "(cyberian-prove --out) or raw little-endian float32 (a job's /output, e.g. emb.f32).",
)
@click.option("--log", "log", is_flag=True,
              help="Also check that the receipt is in the issuer's transparency log: with the "
                   "bundle saved beside it (<receipt>.log.json), else fetched from the server "
                   "of --keys-url.")
@click.option("--log-server", metavar="URL",
              help="Fetch the log proof from this server (implies --log).")
@click.option("--log-bundle", type=click.Path(dir_okay=False, path_type=Path),
              help="Read the log proof from this bundle file (implies --log).")
def verify(receipt_file: Path, key_file: Path | None, keys_url: str | None,
           rows_file: Path | None, log: bool, log_server: str | None,
           log_bundle: Path | None) -> None:
    """Check RECEIPT_FILE offline: hash, signature, roots, sampling and replays (and rows,
    and with --log its transparency-log entry)."""
    from ..exceptions import ReceiptVerificationError  # noqa: PLC0415
    from ..receipts import check_receipt  # noqa: PLC0415

    trusted = _trusted_keys(key_file, keys_url)
    data = _read(receipt_file)
    try:
        receipt = _unwrap(data, receipt_file)
    except ReceiptVerificationError as exc:  # a malformed DSSE envelope
        for name, reason in exc.failed.items():
            click.echo(f"FAIL {name}: {reason}")
        raise SystemExit(1) from None
    rows = _rows(rows_file, receipt)
    results = check_receipt(receipt, trusted)
    if rows is not None:
        results["embeddings"] = _embeddings_result(rows, receipt)
    if log or log_server is not None or log_bundle is not None:
        from ._receipt_log import LogOptions, log_check  # noqa: PLC0415

        results["log"] = log_check(receipt, LogOptions(receipt_file, key_file, keys_url,
                                                       log_server, log_bundle))
    for result in results.values():
        if result.ok:
            click.echo(f"ok   {result.name}: {result.detail}")
        else:
            click.echo(f"FAIL {result.name}: {result.detail}")
    failed = [result.name for result in results.values() if not result.ok]
    if failed:
        click.echo(f"INVALID: {len(failed)} check(s) failed: {', '.join(failed)}")
        raise SystemExit(1)
    click.echo("VALID")


def _percent(value: Any) -> str:
    return f"{100 * value:.4g} %" if isinstance(value, int | float) else "?"


def _get(data: Any, *path: str) -> Any:
    for key in path:
        data = data.get(key) if isinstance(data, Mapping) else None
    return "?" if data is None else data


def _summary(receipt: Mapping[str, Any]) -> list[tuple[str, str]]:
    kind = _get(receipt, "kind")
    escape = _get(receipt, "sampling", "escape")
    odds = ", ".join(
        f"{_percent(entry.get('fraction'))} faked -> {_percent(entry.get('probability'))}"
        for entry in (escape if isinstance(escape, list) else [])
        if isinstance(entry, Mapping)
    )
    replays = _get(receipt, "replays")
    count = len(replays) if isinstance(replays, list) else "?"
    unit = unit_name(kind)
    if kind == "local":
        replayed = "no: a local receipt, nothing was independently re-run"
    elif kind == "vaas":
        replayed = f"yes: {count} block(s) re-executed by the verifier"
    else:
        replayed = f"yes: {count} chunk(s) re-run by an independent replayer"
    bound = _get(receipt, "sampling", "auto", "bound")
    auto = f" (auto: deterrence bound {bound})" if bound != "?" else ""
    return [
        ("receipt", f"{_get(receipt, 'receipt_id')} (format v{_get(receipt, 'version')}, {kind})"),
        ("job", str(_get(receipt, "job_id"))),
        ("model", f"sha256 {_get(receipt, 'model_sha256')}"),
        ("tokenizer", f"sha256 {_get(receipt, 'tokenizer_sha256')}"),
        ("spec", f"hash {_get(receipt, 'spec_hash')}"),
        (
            "inputs",
            f"{_get(receipt, 'input_count')} texts in "
            f"{units_phrase(kind, _get(receipt, 'chunk_count'), _get(receipt, 'chunk_size'))}, "
            f"{_get(receipt, 'dimensions')} dimensions",
        ),
        ("input root", str(_get(receipt, "input_root"))),
        ("output root", str(_get(receipt, "output_root"))),
        ("proof root", str(_get(receipt, "proof_root"))),
        ("issued", f"{_get(receipt, 'issued_at')} by key {_get(receipt, 'issuer', 'keyid')}"),
        (
            "sample",
            f"{_get(receipt, 'sampling', 'k')} of {_get(receipt, 'chunk_count')} {unit}s, "
            f"rate {_get(receipt, 'sampling', 'rate')}{auto}",
        ),
        ("escape odds", odds or "?"),
        ("replayed", replayed),
    ]


@group.command("show")
@click.argument("receipt_file", type=click.Path(dir_okay=False, path_type=Path))
def show(receipt_file: Path) -> None:
    """Summarise what RECEIPT_FILE claims (it is not verified: use `receipt verify`)."""
    unwrapped = _unwrap(_read(receipt_file), receipt_file)
    if not isinstance(unwrapped, Mapping):
        fail(f"{receipt_file} is not a receipt (not a JSON object)")
    for label, text in _summary(unwrapped):
        click.echo(f"{label:<12} {text}")
    unit = unit_name(unwrapped.get("kind"))
    click.echo(f"(escape odds: chance that a batch with that share of {unit}s faked goes "
               "unnoticed)")
    click.echo("not verified here: run `cyberian receipt verify` with the issuer's key")
