"""Response parsing: JSON shapes, ``/jobs/{id}/output`` embeddings and the ``/keys`` document.

Whatever the server answers is checked here; an answer of the wrong shape
is an :class:`~cyberian.exceptions.ApiError`, never a ``KeyError`` later.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
import numpy as np
import numpy.typing as npt

from ..exceptions import ApiError

if TYPE_CHECKING:
    from ..signing import PublicKey

__all__ = [
    "JobResult",
    "as_dict",
    "as_list",
    "decode_output",
    "field",
    "route_missing",
    "trusted_keys_of",
]


@dataclass
class JobResult:
    """What ``submit_and_wait`` returns: the settled job, its receipt, the embeddings and the
    server-side receipt check (``None`` when it was not asked for)."""

    job: dict[str, Any]
    receipt: dict[str, Any]
    embeddings: npt.NDArray[np.float32]
    verification: dict[str, Any] | None = None


def decode_output(response: httpx.Response) -> npt.NDArray[np.float32]:
    """The ``(rows, cols)`` float32 array of a ``/jobs/{id}/output`` response (a writable copy)."""
    status = response.status_code
    dtype = response.headers.get("x-cyberian-dtype", "float32").strip().lower()
    if dtype != "float32":
        raise ApiError(f"unsupported x-cyberian-dtype {dtype!r}", status_code=status)
    shape = response.headers.get("x-cyberian-shape", "")
    try:
        rows, cols = (int(part) for part in shape.split(","))
    except ValueError:
        raise ApiError(
            f"unexpected x-cyberian-shape header: {shape!r}", status_code=status
        ) from None
    if rows < 0 or cols < 0 or len(response.content) != rows * cols * 4:
        raise ApiError(
            f"output is {len(response.content)} bytes, not the {rows}x{cols} float32 "
            "its x-cyberian-shape announces",
            status_code=status,
        )
    array = np.frombuffer(response.content, dtype="<f4").reshape(rows, cols)
    return array.astype(np.float32)  # a native-order, writable copy


def trusted_keys_of(document: Any) -> dict[str, PublicKey]:
    """The signing keys, by keyid, of a ``GET /keys`` document; :class:`ApiError` if unusable."""
    # Imported here: the client loads the verification stack only when asked to.
    from ..signing import parse_keys_document  # noqa: PLC0415

    try:
        return parse_keys_document(document)
    except ValueError as error:
        raise ApiError(f"the server's /keys document is unusable: {error}", body=document) from None


def as_dict(value: Any, what: str) -> dict[str, Any]:
    """``value`` when it is a JSON object; :class:`ApiError` naming ``what`` otherwise."""
    if not isinstance(value, dict):
        raise ApiError(f"expected a JSON object from {what}, got {type(value).__name__}")
    return value


def as_list(value: Any, key: str) -> list[dict[str, Any]]:
    """The list under ``key`` of a JSON object (empty when absent or not a list)."""
    items = value.get(key, []) if isinstance(value, dict) else []
    return items if isinstance(items, list) else []


def field(value: Mapping[str, Any], key: str, what: str) -> Any:
    """``value[key]``; :class:`ApiError` saying that ``what`` lacks it otherwise."""
    if key not in value:
        raise ApiError(f"{what} lacks {key!r}", body=dict(value))
    return value[key]


def route_missing(error: ApiError) -> bool:
    """Whether a 404/405 came from a server without the route (not our JSON error body)."""
    body = error.body
    return error.status_code in (404, 405) and not (isinstance(body, dict) and "error" in body)
