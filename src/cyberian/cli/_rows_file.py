"""Reading an embeddings file for ``cyberian receipt verify --embeddings``.

Two forms are read, told apart by their first bytes, not their names:

* ``.npy`` (what ``cyberian-prove --out`` writes): any shape and dtype is
  read as stored, and the check says what is wrong with it;
* anything else is raw little-endian float32 rows in C order (what a job's
  ``GET /jobs/{id}/output`` serves, e.g. saved as ``emb.f32``), shaped by the
  receipt's ``dimensions``.

Both are memory-mapped, so a large file is hashed without being loaded
whole. A file that cannot be read at all is an :class:`InputError` (exit 2);
a raw file whose size is no whole number of rows is :class:`NotRowsError`,
which the command reports as a failed check (exit 1).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from ..exceptions import InputError

__all__ = ["NotRowsError", "read_rows"]

_NPY_MAGIC: Final = b"\x93NUMPY"
_FLOAT32_BYTES: Final = 4


class NotRowsError(ValueError):
    """A readable raw file that holds no whole number of float32 rows."""


def _raw(path: Path, size: int, dimensions: int | None) -> npt.NDArray[Any]:
    if dimensions is None:
        raise NotRowsError(f"cannot shape the raw float32 rows of {path}: the receipt states "
                           "no valid dimensions")
    row_bytes = _FLOAT32_BYTES * dimensions
    if size % row_bytes:
        raise NotRowsError(f"{path} holds {size} bytes, not whole rows of {dimensions} "
                           f"little-endian float32 ({row_bytes} bytes each): no row count "
                           "fits, so no chunk can match")
    if size == 0:
        return np.empty((0, dimensions), dtype="<f4")
    return np.memmap(path, dtype="<f4", mode="r", shape=(size // row_bytes, dimensions))


def read_rows(path: Path, dimensions: int | None) -> npt.NDArray[Any]:
    """The rows in ``path``: a ``.npy`` file, else raw little-endian float32 of ``dimensions``.

    Raises :class:`InputError` when the file cannot be read (or is a broken
    ``.npy``), :class:`NotRowsError` when a raw file is no whole number of rows.
    """
    try:
        with path.open("rb") as handle:
            head = handle.read(len(_NPY_MAGIC))
        size = path.stat().st_size
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    if head != _NPY_MAGIC:
        return _raw(path, size, dimensions)
    try:
        rows: npt.NDArray[Any] = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise InputError(f"{path} is not a readable .npy file ({exc})") from None
    return rows
