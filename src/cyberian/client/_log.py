"""The transparency log's public routes, as client operations and a keyless client.

The server publishes its log key in ``GET /keys`` (``"log": {"origin", "key"}``),
a signed checkpoint at ``GET /log/checkpoint`` (a C2SP signed note, text),
inclusion proofs at ``GET /log/proof/inclusion`` and consistency proofs at
``GET /log/proof/consistency``; none needs an API key. The operations here
take any client (``cyberian-prove --verify`` runs them on its own
authenticated :class:`~cyberian.client.Client`); :class:`LogClient` runs them
without a key, for ``cyberian receipt verify --log`` and ``cyberian log
monitor``. Every failure is a :class:`~cyberian.exceptions.ApiError` (a
:class:`~cyberian.exceptions.NetworkError` when the server cannot be
reached), exit code 2.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Self

import httpx

from .._text import clip
from ..exceptions import ApiError, CyberianError
from ._base import BaseClient
from ._keys import _KeylessClient, split_keys_url
from ._responses import as_dict, field

if TYPE_CHECKING:
    from ..tlog import Checkpoint, InclusionProof, LogKey
    from ._steps import Operation

__all__ = [
    "LOG_TIMEOUT",
    "LogClient",
    "LogIdentity",
    "log_identity_of",
    "op_bundle",
    "op_checkpoint",
    "op_consistency",
    "op_inclusion",
]

LOG_TIMEOUT: Final = 15.0
"""Seconds one request to a log route may take."""
CHECKPOINT_PATH: Final = "/log/checkpoint"
INCLUSION_PATH: Final = "/log/proof/inclusion"
CONSISTENCY_PATH: Final = "/log/proof/consistency"


@dataclass(frozen=True)
class LogIdentity:
    """A log's origin line and its verifier key (C2SP ``vkey`` text and parsed)."""

    origin: str
    vkey: str
    key: LogKey


def log_identity_of(document: Any) -> LogIdentity | None:
    """The log identity a ``/keys`` document publishes under ``"log"`` (``None`` without one).

    :class:`ValueError` when ``"log"`` is there but is not ``{"origin": str, "key": vkey}``
    with a verifier key whose name is the origin.
    """
    from ..tlog import parse_verifier_key  # noqa: PLC0415 - the log code only when used

    log = document.get("log") if isinstance(document, Mapping) else None
    if log is None:
        return None
    if not isinstance(log, Mapping):
        raise ValueError('"log" must be an object {"origin": ..., "key": ...}')
    origin, vkey = log.get("origin"), log.get("key")
    if not isinstance(origin, str) or not origin or not isinstance(vkey, str):
        raise ValueError('"log" must hold a string "origin" and a verifier key "key"')
    try:
        key = parse_verifier_key(vkey)
    except (CyberianError, ValueError) as exc:
        raise ValueError(f'"log.key" is not a verifier key: {_message(exc)}') from None
    if key.name != origin:
        raise ValueError(f'"log.key" is named {key.name!r}, not the origin {origin!r}')
    return LogIdentity(origin, vkey, key)


def _message(exc: Exception) -> str:
    return clip(exc.message if isinstance(exc, CyberianError) else str(exc), 200)


def _checked(response: httpx.Response, what: str) -> httpx.Response:
    if 300 <= response.status_code < 400:  # redirects are not followed: say so
        target = clip(response.headers.get("location", "nowhere"), 200)
        raise ApiError(f"{what}: a redirect to {target}, not followed (use the final URL)",
                       status_code=response.status_code)
    return response


def _object(client: BaseClient[Any], path: str,
            params: Mapping[str, str | int]) -> Operation[dict[str, Any]]:
    value = yield from client._json("GET", path, params=params, authenticated=False)
    return as_dict(value, f"GET {path}")


def op_checkpoint(client: BaseClient[Any]) -> Operation[str]:
    """The server's current signed checkpoint, the note's text (not yet verified)."""
    response = yield from client._request("GET", CHECKPOINT_PATH, authenticated=False)
    _checked(response, f"GET {CHECKPOINT_PATH}")
    try:
        return response.content.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(f"GET {CHECKPOINT_PATH} answered bytes that are not UTF-8",
                       status_code=response.status_code) from None


def op_inclusion(client: BaseClient[Any], receipt_hash: str,
                 size: int) -> Operation[InclusionProof]:
    """The inclusion proof of the entry of the receipt ``receipt_hash`` in the tree of ``size``."""
    from ..tlog import InclusionProof  # noqa: PLC0415

    body = yield from _object(client, INCLUSION_PATH, {"receipt_hash": receipt_hash,
                                                       "size": size})
    try:
        return InclusionProof.from_json(body)
    except (CyberianError, ValueError, TypeError, KeyError) as exc:
        raise ApiError(f"GET {INCLUSION_PATH} answered an unusable proof: {_message(exc)}",
                       body=body) from None


def op_consistency(client: BaseClient[Any], old_size: int,
                   new_size: int) -> Operation[list[bytes]]:
    """The consistency proof (node hashes) from the tree of ``old_size`` to ``new_size``."""
    body = yield from _object(client, CONSISTENCY_PATH, {"from": old_size, "to": new_size})
    proof = field(body, "proof", f"GET {CONSISTENCY_PATH}")
    try:
        if not isinstance(proof, list):
            raise ValueError("proof is not a list")
        return [bytes.fromhex(node) for node in proof]
    except (ValueError, TypeError) as exc:
        raise ApiError(f"GET {CONSISTENCY_PATH} answered an unusable proof: {_message(exc)}",
                       body=body) from None


def op_bundle(client: BaseClient[Any], receipt: Mapping[str, Any],
              identity: LogIdentity) -> Operation[dict[str, Any]]:
    """A log bundle for ``receipt``: the current checkpoint (its signature checked with
    ``identity``) and the receipt's inclusion proof at that checkpoint's size.

    The checkpoint failing its signature is a :class:`~cyberian.tlog.TlogError`.
    """
    from ..tlog import make_bundle, open_checkpoint  # noqa: PLC0415

    note = yield from op_checkpoint(client)
    checkpoint = open_checkpoint(note, [identity.key], origin=identity.origin)
    receipt_hash = receipt.get("receipt_hash")
    if not isinstance(receipt_hash, str):
        raise ApiError("the receipt has no receipt_hash to look up in the log")
    inclusion = yield from op_inclusion(client, receipt_hash, checkpoint.size)
    return make_bundle(note, inclusion, identity.vkey)


class LogClient:
    """A keyless blocking client of one server's log routes and ``GET /keys``.

    ``server`` is the server's base URL (the path of a URL such as its ``/keys``
    is dropped: every route is at the root);
    :class:`ValueError` unless it is http(s). ``transport`` replaces httpx's
    network transport (tests pass an ``httpx.MockTransport``).
    """

    def __init__(self, server: str, *, timeout: float = LOG_TIMEOUT,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.base_url = split_keys_url(server)[0]
        self._client = _KeylessClient(self.base_url, timeout=timeout, transport=transport)

    def close(self) -> None:
        """Release the connection pool."""
        self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def keys_document(self) -> dict[str, Any]:
        """The server's ``GET /keys`` document, as served."""
        return self._client._run(self._client._op_get_keys())

    def identity(self, document: Mapping[str, Any] | None = None) -> LogIdentity:
        """The log identity of ``document`` (default: fetched ``/keys``); :class:`ApiError`
        when it publishes none or an unusable one."""
        document = self.keys_document() if document is None else document
        try:
            identity = log_identity_of(document)
        except ValueError as exc:
            raise ApiError(f"the /keys of {self.base_url} has an unusable log key: {exc}",
                           body=dict(document)) from None
        if identity is None:
            raise ApiError(f"the /keys of {self.base_url} publishes no log key (a server "
                           "without a transparency log?)", body=dict(document))
        return identity

    def checkpoint(self) -> str:
        """The current signed checkpoint's note text (not yet verified)."""
        return self._client._run(op_checkpoint(self._client))

    def opened_checkpoint(self, identity: LogIdentity) -> tuple[str, Checkpoint]:
        """The current checkpoint's note and the checkpoint, its signature checked
        (:class:`~cyberian.tlog.TlogError` when it fails)."""
        from ..tlog import open_checkpoint  # noqa: PLC0415

        note = self.checkpoint()
        return note, open_checkpoint(note, [identity.key], origin=identity.origin)

    def inclusion(self, receipt_hash: str, size: int) -> InclusionProof:
        """The inclusion proof of receipt ``receipt_hash`` at tree ``size`` (not yet verified)."""
        return self._client._run(op_inclusion(self._client, receipt_hash, size))

    def consistency(self, old_size: int, new_size: int) -> list[bytes]:
        """The consistency proof from ``old_size`` to ``new_size`` (not yet verified)."""
        return self._client._run(op_consistency(self._client, old_size, new_size))

    def bundle(self, receipt: Mapping[str, Any], identity: LogIdentity) -> dict[str, Any]:
        """A log bundle for ``receipt`` (see :func:`op_bundle`)."""
        return self._client._run(op_bundle(self._client, receipt, identity))
