"""``cyberian keys``: receipt-signing keys and the server's API keys.

* ``keys generate --out PATH`` writes a private key to PATH (PKCS#8 PEM, mode
  0600, never overwriting) and the public key to PATH.pub, and prints the keyid.
* ``keys revoke KEY_ID`` revokes an API key of the server in ``--data-dir``
  (any account's; idempotent).
* ``keys rotate-signing`` makes the server in ``--data-dir`` sign with a new
  key from now on; older public keys stay published so old receipts verify.
"""

from __future__ import annotations

from pathlib import Path

import click

from ._common import CyberianGroup, fail
from ._server import data_dir_options, open_store

__all__ = ["group"]


@click.group("keys", cls=CyberianGroup)
def group() -> None:
    """Receipt-signing keys (Ed25519) and the server's API keys."""


@group.command("generate")
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Private key file to create (mode 0600); the public key goes to OUT.pub.",
)
def generate(out: Path) -> None:
    """Create a new signing key pair and print its keyid."""
    from ..signing import generate_signing_key, save_public_key, save_signing_key  # noqa: PLC0415

    public = out.with_name(out.name + ".pub")
    for path in (out, public):
        if path.exists() or path.is_symlink():
            fail(f"{path} already exists; refusing to overwrite a key")
    key = generate_signing_key()
    try:
        save_signing_key(key, out)
    except OSError as exc:
        fail(f"cannot create {out}: {exc.strerror or exc}")
    try:
        save_public_key(key.public_key, public)
    except OSError as exc:
        out.unlink(missing_ok=True)
        fail(f"cannot create {public}: {exc.strerror or exc}")
    click.echo(key.keyid)


@group.command("revoke")
@click.argument("key_id")
@data_dir_options
def revoke(key_id: str, data_dir: Path | None, config: Path | None,
           database: str | None) -> None:
    """Revoke the server's API key KEY_ID (its public id, as /account shows it)."""
    from ..server.accounts import revoke_key  # noqa: PLC0415
    from ..server.store.accounts import find_key  # noqa: PLC0415
    from ..server.timeutil import iso, utcnow  # noqa: PLC0415

    _, store = open_store(data_dir, config, database)
    try:
        before = find_key(store, key_id)
        revoked = revoke_key(store, key_id, now=utcnow())
    finally:
        store.close()
    if revoked is None or revoked.revoked_at is None:
        fail(f"no API key {key_id}")
    state = "already revoked" if before is not None and before.revoked_at else "revoked"
    click.echo(f"{state} {key_id} (account {revoked.account_id}) at {iso(revoked.revoked_at)}")


@group.command("rotate-signing")
@data_dir_options
def rotate_signing(data_dir: Path | None, config: Path | None,
                   database: str | None) -> None:
    """Make the server sign receipts with a new key (old public keys stay published)."""
    from ..server.signer import Signer  # noqa: PLC0415
    from ..server.timeutil import utcnow  # noqa: PLC0415

    settings, store = open_store(data_dir, config, database)
    try:
        keyid = Signer(settings.key_folder, store).rotate(utcnow())
    finally:
        store.close()
    click.echo(keyid)
