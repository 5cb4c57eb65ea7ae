"""``cyberian receipt page OUT.html [--receipt FILE] [--keys FILE]``: write the browser audit page.

The page is written verbatim (whole or not at all, with the user's normal
file mode). With ``--receipt`` and/or ``--keys`` the last line printed is the
``file://…#receipt=…&keys=…`` URL that opens the written page with those
inputs loaded; the page file itself never contains them. Exit 0, or 2 for an
unreadable input or an unwritable output.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from ._common import CyberianCommand, fail

__all__ = ["page"]


def _receipt_bytes(path: Path) -> bytes:
    """The receipt's bytes as given (a DSSE envelope opened to its receipt JSON); exit 2 if none."""
    from .._json import loads_json  # noqa: PLC0415
    from ..exceptions import ReceiptVerificationError  # noqa: PLC0415
    from .receipt import _read, _unwrap  # noqa: PLC0415 - the same rule as `receipt verify`

    data = _read(path)
    try:
        receipt = _unwrap(data, path)
    except ReceiptVerificationError as exc:
        fail(f"{path} is not a receipt: {'; '.join(exc.failed.values())}")
    if isinstance(receipt, bytes) or "payloadType" not in loads_json(data):
        return data  # verbatim: the page checks exactly these bytes
    return json.dumps(receipt, ensure_ascii=False).encode("utf-8")


def _keys_bytes(path: Path) -> bytes:
    """A ``/keys`` document: the file itself if it is one, else one made of its PEM/base64 key."""
    from ..signing import keys_document, load_trusted_keys  # noqa: PLC0415
    from .receipt import _read  # noqa: PLC0415

    data = _read(path)
    try:
        trusted = load_trusted_keys(path)
    except ValueError as exc:
        fail(str(exc))
    if data.lstrip().startswith(b"{"):
        return data
    return json.dumps(keys_document(trusted.values())).encode("utf-8")


@click.command("page", cls=CyberianCommand)
@click.argument("out_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--receipt", "receipt_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Also print the URL that opens the page with this receipt loaded "
                   "(carried in the URL fragment, never in the page).")
@click.option("--keys", "keys_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Also carry these trusted keys in that URL: a saved /keys document "
                   "(<receipt>.keys.json), or a PEM / base64 public key.")
def page(out_file: Path, receipt_file: Path | None, keys_file: Path | None) -> None:
    """Write the self-contained receipt audit page (it verifies in a browser) to OUT_FILE."""
    from .._files import write_atomically  # noqa: PLC0415
    from ..receipts.audit import audit_page_html, fragment_url  # noqa: PLC0415

    receipt = _receipt_bytes(receipt_file) if receipt_file is not None else None
    keys = _keys_bytes(keys_file) if keys_file is not None else None
    try:
        html = audit_page_html()
    except OSError as exc:
        fail(f"the audit page is missing from this installation: {exc.strerror or exc}")
    try:
        write_atomically(out_file, html.encode("utf-8"))
    except OSError as exc:
        fail(f"cannot write {out_file}: {exc.strerror or exc}")
    click.echo(f"wrote {out_file} (the receipt audit page: open it in a browser; it needs "
               "no network)")
    if receipt is not None or keys is not None:
        click.echo(fragment_url(out_file, receipt, keys))
