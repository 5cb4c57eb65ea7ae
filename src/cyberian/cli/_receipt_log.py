"""``cyberian receipt verify --log``: the ``log`` check, that the receipt is in the server's log.

The evidence is a log bundle (a signed checkpoint and the receipt's inclusion
proof at its size): ``--log-bundle FILE``, else the ``<receipt>.log.json``
saved beside the receipt, else fetched from ``--log-server URL`` or the
server of ``--keys-url``. With ``--log-server`` the bundle is always fetched.

The checkpoint's signature is checked with the first log key found of: the
``"log"`` of the keys document given with ``--key``; the ``GET /keys`` of the
server named by ``--keys-url`` or ``--log-server``; the bundle's own key. The
check line names which, because they are not worth the same: the first is
as trusted as the receipt keys the user chose, the second as the server
answering at that URL now, and the last only shows that the bundle is
internally consistent -- whoever could forge the bundle could forge its key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .._text import clip
from ..exceptions import ApiError, CyberianError, TlogError
from ._common import fail

if TYPE_CHECKING:
    from ..client._log import LogIdentity
    from ..receipts import CheckResult

__all__ = ["LogOptions", "log_check"]


@dataclass(frozen=True)
class LogOptions:
    """What ``receipt verify`` was told about the log evidence and the keys."""

    receipt_file: Path
    key_file: Path | None
    keys_url: str | None
    log_server: str | None
    log_bundle: Path | None


def _message(exc: Exception) -> str:
    return clip(exc.message if isinstance(exc, CyberianError) else str(exc), 300)


def _identity_in_file(key_file: Path) -> LogIdentity | None:
    """The log identity of a saved ``/keys`` document (``None``: no ``"log"``, or no document)."""
    from .._json import loads_json  # noqa: PLC0415
    from ..client._log import log_identity_of  # noqa: PLC0415

    try:
        text = key_file.read_bytes().decode("utf-8", errors="replace").strip()
    except OSError as exc:
        fail(f"cannot read {key_file}: {exc.strerror or exc}")
    if not text.startswith("{"):
        return None  # a bare public key: no log key in it
    try:
        return log_identity_of(loads_json(text))
    except ValueError as exc:
        fail(f"{key_file}: {clip(str(exc), 300)}")


def _server_identity(server: str) -> LogIdentity:
    from ..client._log import LogClient  # noqa: PLC0415

    try:
        with LogClient(server) as client:
            return client.identity()
    except (CyberianError, ValueError) as exc:
        fail(f"cannot fetch the log key from {server}: {_message(exc)}")


def _read_bundle(path: Path) -> Any:
    from .._json import loads_json  # noqa: PLC0415

    try:
        return loads_json(path.read_bytes())
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror or exc}")
    except ValueError as exc:
        fail(f"{path} is not a log bundle: not readable as JSON ({clip(str(exc), 200)})")


def _fetch_bundle(server: str, receipt: Mapping[str, Any],
                  identity: LogIdentity) -> dict[str, Any] | CheckResult:
    """The bundle fetched from ``server``, or the failed check (not in the log, bad signature)."""
    from ..client._log import LogClient  # noqa: PLC0415
    from ..client._responses import route_missing  # noqa: PLC0415
    from ..receipts import CheckResult  # noqa: PLC0415

    try:
        with LogClient(server) as client:
            return client.bundle(receipt, identity)
    except TlogError as exc:
        return CheckResult("log", False, f"the checkpoint of {server}: {_message(exc)}")
    except ApiError as exc:
        if exc.status_code == 404 and not route_missing(exc):
            return CheckResult("log", False, f"the log of {server} has no entry for this "
                                             f"receipt ({_message(exc)})")
        fail(f"cannot fetch the log proof from {server}: {_message(exc)}")
    except (CyberianError, ValueError) as exc:
        fail(f"cannot fetch the log proof from {server}: {_message(exc)}")


def _source(options: LogOptions) -> tuple[Path | None, str | None]:
    """The bundle file to read, or the server to fetch from (exit 2 when there is neither)."""
    from ._verify import log_file_for  # noqa: PLC0415

    if options.log_bundle is not None and options.log_server is not None:
        raise click.UsageError("give at most one of --log-bundle or --log-server")
    if options.log_bundle is not None:
        return options.log_bundle, None
    if options.log_server is not None:
        return None, options.log_server
    saved = log_file_for(options.receipt_file)
    if saved.is_file():
        return saved, None
    if options.keys_url is not None:
        return None, options.keys_url
    raise click.UsageError(f"no log bundle at {saved}: give --log-bundle FILE, "
                           "--log-server URL or --keys-url")


def _trusted_identity(options: LogOptions, server: str | None) -> tuple[LogIdentity | None, str]:
    """The log identity to trust and where it came from (``None``: the bundle's own key)."""
    if options.key_file is not None:
        identity = _identity_in_file(options.key_file)
        if identity is not None:
            return identity, f"log key from {options.key_file}"
    server = options.keys_url or server
    if server is not None:
        return _server_identity(server), f"log key from GET /keys of {server}"
    return None, "log key from the bundle itself, not independently trusted"


def log_check(receipt: Mapping[str, Any] | bytes, options: LogOptions) -> CheckResult:
    """The ``log`` check of ``receipt``: its entry is in a checkpoint signed by the log key.

    Exit 2 when the evidence or the key cannot be had (unreadable file, no
    server, connection error); a failed check otherwise names what failed.
    """
    from ..receipts import CheckResult  # noqa: PLC0415
    from ..tlog import verify_bundle  # noqa: PLC0415

    bundle_file, server = _source(options)
    identity, trust = _trusted_identity(options, server)
    if not isinstance(receipt, Mapping):
        return CheckResult("log", False, "not checked: unreadable receipt")
    if server is not None:
        assert identity is not None  # a server always gives a key
        fetched = _fetch_bundle(server, receipt, identity)
        if isinstance(fetched, CheckResult):
            return fetched
        bundle: Any = fetched
        where = f"fetched from {server}"
    else:
        assert bundle_file is not None
        bundle = _read_bundle(bundle_file)
        where = str(bundle_file)
    keys = None if identity is None else [identity.key]
    try:
        checkpoint, inclusion = verify_bundle(receipt, bundle, keys)
    except TlogError as exc:
        return CheckResult("log", False, f"{where}: {_message(exc)} ({trust})")
    if identity is not None and checkpoint.origin != identity.origin:
        return CheckResult("log", False, f"{where}: the checkpoint's origin "
                                         f"{checkpoint.origin!r} is not the log's "
                                         f"{identity.origin!r} ({trust})")
    return CheckResult("log", True, f"entry {inclusion.index} of {checkpoint.size}, checkpoint "
                                    f"{checkpoint.root.hex()[:16]} signed by {checkpoint.origin} "
                                    f"({trust}; {where})")
