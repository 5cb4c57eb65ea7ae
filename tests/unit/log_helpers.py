"""A fake transparency log served over loopback HTTP, for the log client and monitor tests.

:class:`FakeLog` keeps receipts as RFC 9162 leaves (``tlog.entry_bytes``),
signs checkpoints with its own key and answers the public routes the real
server has (``/keys``, ``/log/checkpoint``, ``/log/proof/inclusion``,
``/log/proof/consistency``). A test can rewrite an entry, drop entries, or
force the checkpoint served (a forked one, say).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from loopback import serve_on_loopback

from cyberian import merkle
from cyberian.signing import SigningKey, generate_signing_key, keys_document
from cyberian.tlog import (
    Checkpoint,
    InclusionProof,
    entry_bytes,
    entry_leaf_hash,
    make_bundle,
    sign_checkpoint,
    verifier_key,
)

ORIGIN = "example.test/log"


@dataclass
class FakeLog:
    """An in-memory log of receipts with a log key and the receipt keys it publishes."""

    receipt_keys: list[SigningKey] = field(default_factory=list)
    key: SigningKey = field(default_factory=generate_signing_key)
    origin: str = ORIGIN
    entries: list[bytes] = field(default_factory=list)
    hashes: list[str] = field(default_factory=list)
    forced_note: str | None = None
    publish_log: bool = True

    @property
    def vkey(self) -> str:
        """The log's C2SP verifier key."""
        return verifier_key(self.origin, self.key.public_key)

    def append(self, receipt: Mapping[str, Any]) -> int:
        """Log ``receipt``; its index."""
        self.entries.append(entry_bytes(receipt))
        self.hashes.append(str(receipt["receipt_hash"]))
        return len(self.entries) - 1

    def checkpoint(self, size: int | None = None) -> Checkpoint:
        """The checkpoint of the first ``size`` entries (default: all)."""
        size = len(self.entries) if size is None else size
        return Checkpoint(self.origin, size, merkle.root(self.entries[:size]))

    def note(self, size: int | None = None) -> str:
        """The signed note of :meth:`checkpoint`."""
        return sign_checkpoint(self.checkpoint(size), self.key, self.origin)

    def inclusion(self, index: int, size: int | None = None) -> InclusionProof:
        """The inclusion proof of entry ``index`` at ``size``."""
        size = len(self.entries) if size is None else size
        return InclusionProof(index, size, entry_leaf_hash(self.entries[index]),
                              tuple(merkle.inclusion_proof(self.entries[:size], index)))

    def bundle(self, index: int) -> dict[str, Any]:
        """A log bundle for entry ``index`` at the current size."""
        return make_bundle(self.note(), self.inclusion(index), self.vkey)

    def keys(self) -> dict[str, Any]:
        """The ``GET /keys`` document."""
        document = keys_document([k.public_key for k in self.receipt_keys])
        if self.publish_log:
            document["log"] = {"origin": self.origin, "key": self.vkey}
        return document

    # -- the routes -------------------------------------------------------------

    def answer(self, path: str, query: Mapping[str, str]) -> tuple[int, str, bytes]:
        """Status, content type and body of a GET."""
        if path == "/keys":
            return _json(200, self.keys())
        if path == "/log/checkpoint":
            note = self.forced_note if self.forced_note is not None else self.note()
            return 200, "text/plain; charset=utf-8", note.encode()
        try:
            if path == "/log/proof/inclusion":
                size = int(query["size"])
                if query.get("receipt_hash") not in self.hashes[:size]:
                    return _json(404, {"error": "not_found", "message": "no such entry"})
                index = self.hashes.index(query["receipt_hash"])
                proof = self.inclusion(index, size).to_json()
                return _json(200, proof)
            if path == "/log/proof/consistency":
                old, new = int(query["from"]), int(query["to"])
                nodes = merkle.consistency_proof(self.entries[:new], old)
                return _json(200, {"from": old, "to": new, "proof": [n.hex() for n in nodes]})
        except (KeyError, ValueError) as exc:
            return _json(400, {"error": "bad_request", "message": str(exc)})
        return 404, "text/plain", b"no such route"


def _json(status: int, document: Any) -> tuple[int, str, bytes]:
    return status, "application/json", json.dumps(document).encode()


@contextlib.contextmanager
def serving(log: FakeLog) -> Iterator[str]:
    """``log`` served on 127.0.0.1 (a free port) while the block runs; yields its base URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            status, kind, body = log.answer(parts.path, query)
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    yield from serve_on_loopback(Handler)
