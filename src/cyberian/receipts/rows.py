"""The ``embeddings`` check: are these output rows the ones a receipt commits to?

The rows are cut the way the receipt's chunks were cut
(:func:`~cyberian.commitments.chunk_bounds` of ``input_count`` texts in
``chunk_size`` pieces -- chunks of a ``job`` or ``local`` receipt, blocks of
``verification.vaas_block`` texts of a ``vaas`` one), and each piece's
:func:`~cyberian.commitments.output_commitment` is compared with the
receipt's ``chunks[i].output_commitment``. The receipt's own checks bind
those commitments to the signed ``output_root``; this one binds the rows to
them. It names the first chunk (or block) that differs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from ..commitments import chunk_bounds, output_commitment
from ._checks import _valid_chunks
from ._fields import CheckError, as_int, need
from .units import unit_name
from .verify import CheckResult

__all__ = ["EMBEDDINGS_CHECK", "check_embeddings"]

EMBEDDINGS_CHECK: Final = "embeddings"
"""The name the check reports under."""



def _check_shape(rows: npt.NDArray[Any], count: int, dimensions: int, unit: str) -> None:
    if rows.dtype.kind != "f" or rows.dtype.itemsize != 4:
        raise CheckError(f"the rows are {rows.dtype}, not float32: no {unit} matches, "
                         f"from {unit} 0 on")
    if rows.ndim != 2 or rows.shape[1] != dimensions:
        raise CheckError(f"the rows have shape {tuple(rows.shape)}, not ({count}, {dimensions}) "
                         f"(input_count, dimensions): no {unit} matches, from {unit} 0 on")


def _first_difference(rows: npt.NDArray[Any], unit: str, index: int, start: int, stop: int,
                      want: str) -> str:
    """``chunk 2 (rows 8-11) hashes to …, the receipt commits to …``."""
    have = max(0, min(stop, len(rows)) - start)
    missing = "" if have == stop - start else f", of which the file has {have}"
    got = output_commitment(rows[start:stop])
    return (f"{unit} {index} (rows {start}-{stop - 1}{missing}) hashes to {got[:16]}…, "
            f"the receipt commits to {want[:16]}…")


def _compare(body: Mapping[str, Any], rows: npt.NDArray[Any]) -> str:
    count = as_int(need(body, "input_count"), "input_count", 1)
    size = as_int(need(body, "chunk_size"), "chunk_size", 1)
    dimensions = as_int(need(body, "dimensions"), "dimensions", 1)
    chunks = _valid_chunks(body)
    unit = unit_name(body.get("kind"))
    bounds = list(chunk_bounds(count, size))
    if len(bounds) != len(chunks):
        raise CheckError(f"the receipt lists {len(chunks)} {unit}s, but {count} texts in "
                         f"{unit}s of {size} make {len(bounds)}")
    _check_shape(rows, count, dimensions, unit)
    wants = [chunk["output_commitment"] for chunk in chunks]
    differ = [index for index, ((start, stop), want) in enumerate(zip(bounds, wants, strict=True))
              if output_commitment(rows[start:stop]) != want]
    problems = []
    if len(rows) != count:
        problems.append(f"{len(rows)} rows, but the receipt commits to {count} texts "
                        "(input_count)")
    if differ:
        first = differ[0]
        detail = _first_difference(rows, unit, first, *bounds[first], wants[first])
        verb = "differs" if len(differ) == 1 else "differ"
        problems.append(f"{len(differ)} of {len(bounds)} {unit}s {verb}; the first is {detail}")
    elif problems:
        problems.append(f"the first {count} rows match; {len(rows) - count} row(s) are extra")
    if problems:
        raise CheckError("; ".join(problems))
    plural = "" if len(bounds) == 1 else "s"
    return (f"{count} rows of {dimensions} float32 match the output commitment{plural} of the "
            f"{len(bounds)} {unit}{plural}")


def check_embeddings(receipt: Mapping[str, Any], rows: npt.ArrayLike) -> CheckResult:
    """Whether ``rows`` (``input_count`` x ``dimensions`` float32) are what ``receipt`` commits to.

    Never raises for a bad receipt or bad rows: the result says what differs,
    naming the first chunk (block, for a ``vaas`` receipt) whose rows do not
    hash to the receipt's output commitment. Check the receipt itself with
    :func:`~cyberian.receipts.verify_receipt`: this compares rows with what it
    states, and is worth as much as the receipt.
    """
    try:
        detail = _compare(receipt, np.asanyarray(rows))
    except CheckError as exc:
        return CheckResult(EMBEDDINGS_CHECK, False, str(exc))
    except (ValueError, TypeError, KeyError, IndexError) as exc:  # a shape nobody foresaw
        return CheckResult(EMBEDDINGS_CHECK, False, f"cannot check: {type(exc).__name__}: {exc}")
    return CheckResult(EMBEDDINGS_CHECK, True, detail)
