"""Per-chunk Merkle inclusion proofs against a receipt's ``input`` / ``output`` roots."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .. import merkle
from ..commitments import leaf_data
from ..exceptions import MerkleProofError
from ._format import TREE_TAGS, Tree

__all__ = ["chunk_inclusion_proof", "verify_chunk_inclusion"]


def chunk_inclusion_proof(receipt: Mapping[str, Any], index: int, tree: Tree) -> list[str]:
    """The hex inclusion proof of chunk ``index`` in the receipt's ``input`` or ``output`` tree."""
    leaves = [
        leaf_data(TREE_TAGS[tree], chunk["index"], chunk[f"{tree}_commitment"])
        for chunk in receipt["chunks"]
    ]
    return [node.hex() for node in merkle.inclusion_proof(leaves, index)]


def verify_chunk_inclusion(
    commitment: str,
    index: int,
    chunk_count: int,
    proof: Sequence[str],
    root: str,
    *,
    tree: Tree,
) -> None:
    """Check that ``commitment`` is chunk ``index`` of the ``tree`` with hex ``root``.

    Returns ``None``; raises :class:`MerkleProofError` on any failure. A
    proof from one tree never verifies against another: leaves are tagged.
    """
    try:
        leaf = leaf_data(TREE_TAGS[tree], index, commitment)
        nodes = [bytes.fromhex(node) for node in proof]
        expected = bytes.fromhex(root)
    except (KeyError, ValueError, TypeError) as exc:
        raise MerkleProofError(f"malformed chunk proof: {exc}") from None
    merkle.verify_inclusion(merkle.leaf_hash(leaf), index, chunk_count, nodes, expected)
