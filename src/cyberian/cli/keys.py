"""``cyberian keys``: receipt-signing keys.

``keys generate --out PATH`` writes the private key to PATH (PKCS#8 PEM, mode
0600, never overwriting) and the public key to PATH.pub, and prints the
keyid. Key management commands (e.g. revocation) join this group.
"""

from __future__ import annotations

from pathlib import Path

import click

from ._common import CyberianGroup, fail

__all__ = ["group"]


@click.group("keys", cls=CyberianGroup)
def group() -> None:
    """Receipt-signing keys (Ed25519)."""


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
