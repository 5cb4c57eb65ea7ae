"""The log monitor's logic: check a server's new checkpoint against the history in a state file.

The state file is one JSON document::

    {"format": "cyberian-log-monitor/v1", "server": URL,
     "log": {"origin": ..., "key": vkey},
     "checkpoints": [{"size": n, "root": hex, "seen_at": iso, "note": signed note}, ...],
     "alarms": [{"problem": ..., "seen_at": iso, "earlier": note, "served": note}, ...]}

The log key is recorded on the first run (trust on first use) and a later
run refuses a server whose key differs. Each run verifies the new
checkpoint's signature and that it extends the last one recorded (an RFC
9162 consistency proof); a checkpoint that does not -- the log shrank, two
checkpoints of one size with different roots, a failed consistency proof --
is kept as an alarm beside the earlier one (both signed: the evidence) and
is *not* appended, so the next run checks against the last good checkpoint
again. :func:`monitor_once` does one run against any :class:`LogSource`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Protocol

from .._files import write_atomically
from .._json import loads_json
from .._text import clip
from ..exceptions import ApiError, CyberianError, MerkleProofError, TlogError

if TYPE_CHECKING:
    from ..client._log import LogIdentity
    from ..tlog import Checkpoint, InclusionProof

__all__ = [
    "STATE_FORMAT",
    "LogSource",
    "MonitorResult",
    "MonitorState",
    "load_state",
    "monitor_once",
    "save_state",
]

STATE_FORMAT: Final = "cyberian-log-monitor/v1"


class LogSource(Protocol):
    """What the monitor asks of a log server (:class:`~cyberian.client._log.LogClient`)."""

    def keys_document(self) -> dict[str, Any]:
        """The server's ``GET /keys`` document."""

    def checkpoint(self) -> str:
        """The current signed checkpoint's note text."""

    def consistency(self, old_size: int, new_size: int) -> list[bytes]:
        """The consistency proof between two tree sizes."""

    def inclusion(self, receipt_hash: str, size: int) -> InclusionProof:
        """A receipt's inclusion proof at a tree size."""


@dataclass
class MonitorState:
    """The contents of a state file: the trusted log key and the checkpoints seen."""

    server: str
    origin: str
    vkey: str
    checkpoints: list[dict[str, Any]] = field(default_factory=list)
    alarms: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The state file's JSON document."""
        return {"format": STATE_FORMAT, "server": self.server,
                "log": {"origin": self.origin, "key": self.vkey},
                "checkpoints": self.checkpoints, "alarms": self.alarms}


@dataclass
class MonitorResult:
    """One run's outcome: the state to save, lines to print, and the problems found (exit 1)."""

    state: MonitorState
    lines: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _bad_state(path: Path, reason: str) -> CyberianError:
    return CyberianError(f"{path} is not a log monitor state file: {reason}")


def load_state(path: Path) -> MonitorState | None:
    """The state recorded in ``path`` (``None`` when there is no such file yet).

    A file that cannot be read or is not a state file is a :class:`CyberianError` (exit 2).
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CyberianError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        document = loads_json(data)
    except ValueError as exc:
        raise _bad_state(path, f"not JSON ({clip(str(exc), 200)})") from None
    if not isinstance(document, dict) or document.get("format") != STATE_FORMAT:
        raise _bad_state(path, f'no "format": "{STATE_FORMAT}"')
    log, checkpoints = document.get("log"), document.get("checkpoints")
    alarms = document.get("alarms", [])
    if (not isinstance(log, dict) or not isinstance(log.get("origin"), str)
            or not isinstance(log.get("key"), str) or not isinstance(checkpoints, list)
            or not isinstance(alarms, list)
            or not all(isinstance(c, dict) and isinstance(c.get("note"), str)
                       for c in checkpoints)):
        raise _bad_state(path, 'it needs "log": {"origin", "key"} and a list "checkpoints"')
    return MonitorState(str(document.get("server", "")), log["origin"], log["key"],
                        checkpoints, alarms)


def save_state(path: Path, state: MonitorState) -> None:
    """Write ``state`` to ``path`` whole (readers see the old file or the new one)."""
    text = json.dumps(state.to_json(), indent=2) + "\n"
    write_atomically(path, text.encode("utf-8"))


def _identity(document: Mapping[str, Any], server: str) -> LogIdentity:
    from ..client._log import log_identity_of  # noqa: PLC0415

    try:
        identity = log_identity_of(document)
    except ValueError as exc:
        raise ApiError(f"the /keys of {server} has an unusable log key: {exc}") from None
    if identity is None:
        raise ApiError(f"the /keys of {server} publishes no log key")
    return identity


def _key_label(identity: LogIdentity) -> str:
    return f"{identity.origin} (key hash {identity.key.key_hash.hex()})"


def _describe(checkpoint: Checkpoint) -> str:
    return f"size {checkpoint.size} root {checkpoint.root.hex()}"


def _record(note: str, checkpoint: Checkpoint, now: str) -> dict[str, Any]:
    return {"size": checkpoint.size, "root": checkpoint.root.hex(), "seen_at": now, "note": note}


def _fork(old: Checkpoint, new: Checkpoint, source: LogSource) -> str | None:
    """Why ``new`` does not extend ``old`` (``None``: it does)."""
    from ..tlog import verify_consistency  # noqa: PLC0415

    if new.size < old.size:
        return (f"the log shrank: earlier {_describe(old)}, now {_describe(new)}")
    if new.size == old.size:
        if new.root == old.root:
            return None
        return (f"the log forked: two checkpoints of size {new.size} with different roots: "
                f"earlier {_describe(old)}, now {_describe(new)}")
    if old.size == 0:
        return None  # every tree extends the empty one
    proof = source.consistency(old.size, new.size)
    try:
        verify_consistency(old, new, proof)
    except (TlogError, MerkleProofError) as exc:
        return (f"the log was rewritten: earlier {_describe(old)} is not a prefix of "
                f"{_describe(new)} ({clip(exc.message, 200)})")
    return None


def _check_receipts(source: LogSource, receipts: Sequence[tuple[str, Mapping[str, Any]]],
                    note: str, checkpoint: Checkpoint, identity: LogIdentity,
                    result: MonitorResult) -> None:
    from ..client._responses import route_missing  # noqa: PLC0415
    from ..tlog import make_bundle, verify_bundle  # noqa: PLC0415

    for name, receipt in receipts:
        receipt_hash = receipt.get("receipt_hash")
        if not isinstance(receipt_hash, str):
            result.problems.append(f"receipt {name}: it has no receipt_hash")
            continue
        try:
            inclusion = source.inclusion(receipt_hash, checkpoint.size)
            bundle = make_bundle(note, inclusion, identity.vkey)
            _, proved = verify_bundle(receipt, bundle, [identity.key])
        except ApiError as exc:
            if exc.status_code != 404 or route_missing(exc):
                raise
            result.problems.append(f"receipt {name}: not in the log at size {checkpoint.size} "
                                   f"({clip(exc.message, 200)})")
        except TlogError as exc:
            result.problems.append(f"receipt {name}: {clip(exc.message, 300)}")
        else:
            result.lines.append(f"ok   receipt {name}: entry {proved.index} of "
                                f"{checkpoint.size}")


def monitor_once(source: LogSource, state: MonitorState | None, *, server: str, now: str,
                 receipts: Sequence[tuple[str, Mapping[str, Any]]] = ()) -> MonitorResult:
    """Fetch and check the log's current checkpoint against ``state``; the new state.

    ``receipts`` (name, receipt) are also checked to be in the log at the new
    size. Connection and server errors propagate (exit 2); what was checked
    and found false is in :attr:`MonitorResult.problems`.
    """
    from ..tlog import open_checkpoint  # noqa: PLC0415

    identity = _identity(source.keys_document(), server)
    if state is None:
        state = MonitorState(server, identity.origin, identity.vkey)
        result = MonitorResult(state)
        result.lines.append(f"note log key: {_key_label(identity)} trusted on first use "
                            "and recorded")
    else:
        result = MonitorResult(state)
        if identity.vkey != state.vkey or identity.origin != state.origin:
            result.problems.append(
                f"the log key changed: recorded {state.vkey!r} (origin {state.origin}), "
                f"served {identity.vkey!r} (origin {identity.origin}); refusing (start a "
                "new state file if the change is known to be legitimate)")
            return result
    note = source.checkpoint()
    try:
        checkpoint = open_checkpoint(note, [identity.key], origin=identity.origin)
    except TlogError as exc:
        result.problems.append(f"the checkpoint served does not verify with the log key "
                               f"{_key_label(identity)}: {clip(exc.message, 300)}")
        return result
    if state.checkpoints:
        earlier_note = state.checkpoints[-1]["note"]
        try:
            earlier = open_checkpoint(earlier_note, [identity.key], origin=identity.origin)
        except TlogError as exc:
            raise CyberianError(f"the last checkpoint recorded does not verify: "
                                f"{clip(exc.message, 300)}") from None
        problem = _fork(earlier, checkpoint, source)
        if problem is not None:
            state.alarms.append({"problem": problem, "seen_at": now, "earlier": earlier_note,
                                 "served": note})
            result.problems.append(problem)
            return result
        if checkpoint.size == earlier.size:
            result.lines.append(f"ok   log {identity.origin}: size {checkpoint.size}, "
                                f"unchanged (root {checkpoint.root.hex()[:16]})")
        else:
            state.checkpoints.append(_record(note, checkpoint, now))
            result.lines.append(f"ok   log {identity.origin}: size {earlier.size} -> "
                                f"{checkpoint.size}, consistent (root "
                                f"{checkpoint.root.hex()[:16]})")
    else:
        state.checkpoints.append(_record(note, checkpoint, now))
        result.lines.append(f"ok   log {identity.origin}: size {checkpoint.size}, first "
                            f"checkpoint recorded (root {checkpoint.root.hex()[:16]})")
    _check_receipts(source, receipts, note, checkpoint, identity, result)
    return result
