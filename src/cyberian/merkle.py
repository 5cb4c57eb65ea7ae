"""RFC 9162 §2.1 Merkle trees: tree hash, inclusion and consistency proofs.

Hashing is exactly RFC 9162 (the same as RFC 6962): a leaf hashes as
``SHA-256(0x00 || data)``, an interior node as ``SHA-256(0x01 || left ||
right)``, a tree of ``n > 1`` leaves splits at the largest power of two
below ``n``, nothing is duplicated or padded, and the empty tree hashes to
``SHA-256()`` (of nothing).

Verification *raises* :class:`~cyberian.exceptions.MerkleProofError` and
returns ``None`` (sigstore-python style), so a forgotten check cannot pass
silently. It enforces an exact proof length, ``0 <= index < size``, 32-byte
hashes everywhere, ``0 < size1 <= size2``, and accepts ``size1 == size2``
only with an empty proof and equal roots.

An inclusion proof binds a leaf to a *root*, not to a tree size: for some
index/size pairs the same proof also fits size ± 1 against the same root
(e.g. index 0 of 5 and of 6 leaves). Callers must take the size from the
same authenticated source as the root -- in a receipt both are signed.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from typing import Final

from .exceptions import MerkleProofError

__all__ = [
    "EMPTY_ROOT",
    "consistency_proof",
    "consistency_proof_from_hashes",
    "inclusion_proof",
    "inclusion_proof_from_hashes",
    "leaf_hash",
    "root",
    "root_from_hashes",
    "verify_consistency",
    "verify_inclusion",
]

_HASH_SIZE: Final = 32
_LEAF_PREFIX: Final = b"\x00"
_NODE_PREFIX: Final = b"\x01"
EMPTY_ROOT: Final = hashlib.sha256(b"").digest()
"""The root of the empty tree (RFC 9162: the hash of nothing)."""


def leaf_hash(data: bytes) -> bytes:
    """The RFC 9162 hash of one leaf's data: ``SHA-256(0x00 || data)``."""
    return hashlib.sha256(_LEAF_PREFIX + bytes(data)).digest()


def _node_hash(left: bytes, right: bytes) -> bytes:
    """The RFC 9162 hash of an interior node: ``SHA-256(0x01 || left || right)``."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def _levels_of_hashes(hashes: Sequence[bytes]) -> list[list[bytes]]:
    """Every level of the tree, leaf hashes first, the root's one-element level last.

    ``levels[j][i]`` is the hash of leaves ``[i * 2**j, min((i + 1) * 2**j, n))``:
    adjacent pairs are hashed together and an unpaired last node moves up
    unchanged, which yields exactly the RFC 9162 split at the largest power of
    two. Computed iteratively, O(n) hashes.
    """
    level = list(hashes)
    levels = [level]
    while len(level) > 1:
        paired = [_node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
        levels.append(level)
    return levels


def _subtree(levels: list[list[bytes]], start: int, end: int) -> bytes:
    """The hash of leaves ``[start, end)``, a subtree that RFC 9162 itself forms."""
    height = (end - start - 1).bit_length()
    return levels[height][start >> height]


def _largest_power_of_two_below(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (``n >= 2``)."""
    return 1 << ((n - 1).bit_length() - 1)


def root(leaves: Sequence[bytes]) -> bytes:
    """The RFC 9162 Merkle tree hash of a list of leaf *data* (empty: SHA-256 of nothing)."""
    return root_from_hashes([leaf_hash(data) for data in leaves])


def root_from_hashes(hashes: Sequence[bytes]) -> bytes:
    """The RFC 9162 Merkle tree hash of a list of already computed leaf hashes."""
    if not hashes:
        return EMPTY_ROOT
    return _levels_of_hashes(hashes)[-1][0]


def inclusion_proof(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """The RFC 9162 audit path of leaf ``index`` in the tree of ``leaves``, bottom up."""
    return inclusion_proof_from_hashes([leaf_hash(data) for data in leaves], index)


def inclusion_proof_from_hashes(hashes: Sequence[bytes], index: int) -> list[bytes]:
    """:func:`inclusion_proof` for a tree given by its leaf hashes."""
    if not 0 <= index < len(hashes):
        raise ValueError(f"leaf index {index} is outside a tree of {len(hashes)} leaves")
    proof: list[bytes] = []
    for level in _levels_of_hashes(hashes)[:-1]:
        sibling = index ^ 1
        if sibling < len(level):
            proof.append(level[sibling])
        index >>= 1
    return proof


def consistency_proof(leaves: Sequence[bytes], size1: int) -> list[bytes]:
    """The RFC 9162 proof that the first ``size1`` leaves are a prefix of ``leaves``.

    ``0 < size1 <= len(leaves)``; equal sizes give an empty proof.
    """
    return consistency_proof_from_hashes([leaf_hash(data) for data in leaves], size1)


def consistency_proof_from_hashes(hashes: Sequence[bytes], size1: int) -> list[bytes]:
    """:func:`consistency_proof` for a tree given by its leaf hashes."""
    size2 = len(hashes)
    if not 0 < size1 <= size2:
        raise ValueError(f"size1 must satisfy 0 < size1 <= {size2}, got {size1}")
    levels = _levels_of_hashes(hashes)
    # SUBPROOF(m, D[start:end], complete) unrolled: each step appends the hash
    # that the recursive definition would append *after* its inner result, so
    # the collected list is reversed at the end.
    collected: list[bytes] = []
    start, end, m, complete = 0, size2, size1, True
    while m != end - start:
        k = _largest_power_of_two_below(end - start)
        if m <= k:
            collected.append(_subtree(levels, start + k, end))
            end = start + k
        else:
            collected.append(_subtree(levels, start, start + k))
            start, m, complete = start + k, m - k, False
    if not complete:
        collected.append(_subtree(levels, start, end))
    return collected[::-1]


def _check_hash(value: object, what: str) -> bytes:
    """``value`` as bytes if it is a 32-byte hash; MerkleProofError otherwise."""
    if not isinstance(value, bytes | bytearray) or len(value) != _HASH_SIZE:
        size = len(value) if isinstance(value, bytes | bytearray) else type(value).__name__
        raise MerkleProofError(f"{what} must be a {_HASH_SIZE}-byte hash, got {size}")
    return bytes(value)


def _check_proof(proof: Sequence[bytes]) -> list[bytes]:
    """The proof's hashes, each checked to be 32 bytes."""
    nodes: object = proof  # typed callers aside, refuse a bare hash posing as a proof
    if isinstance(nodes, bytes | bytearray | str) or not isinstance(nodes, Sequence):
        raise MerkleProofError("proof must be a sequence of hashes")
    return [_check_hash(node, f"proof[{i}]") for i, node in enumerate(nodes)]


def _check_size(value: object, what: str) -> int:
    """``value`` if it is a non-negative int (bool refused)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise MerkleProofError(f"{what} must be a non-negative integer, got {value!r}")
    return value


def _decompose(index: int, size: int) -> tuple[int, int]:
    """Split an inclusion path into (inner, border) lengths, as in RFC 9162 §2.1.3.2.

    ``inner`` is how many levels the paths to ``index`` and ``size - 1`` still
    differ; ``border`` counts the left siblings on the tree's right border
    above that.
    """
    inner = (index ^ (size - 1)).bit_length()
    border = bin(index >> inner).count("1")
    return inner, border


def _chain_inner(seed: bytes, proof: Sequence[bytes], index: int) -> bytes:
    """Hash ``seed`` up through ``proof``; bit i of ``index`` says which side it sits on."""
    for i, node in enumerate(proof):
        seed = _node_hash(node, seed) if (index >> i) & 1 else _node_hash(seed, node)
    return seed


def _chain_inner_right(seed: bytes, proof: Sequence[bytes], index: int) -> bytes:
    """Like :func:`_chain_inner`, but only left siblings count: the older tree's hash."""
    for i, node in enumerate(proof):
        if (index >> i) & 1:
            seed = _node_hash(node, seed)
    return seed


def _chain_border_right(seed: bytes, proof: Sequence[bytes]) -> bytes:
    """Hash ``seed`` up the right border, where every sibling is on the left."""
    for node in proof:
        seed = _node_hash(node, seed)
    return seed


def _require_equal(calculated: bytes, expected: bytes, what: str) -> None:
    """MerkleProofError unless the two hashes are equal (constant-time compare)."""
    if not hmac.compare_digest(calculated, expected):
        raise MerkleProofError(
            f"{what} mismatch: calculated {calculated.hex()}, expected {expected.hex()}"
        )


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``leaf_hash`` is leaf ``index`` of a ``size``-leaf tree with ``root``.

    Returns ``None``; raises :class:`MerkleProofError` on any failure.
    """
    index = _check_size(index, "index")
    size = _check_size(size, "size")
    if index >= size:
        raise MerkleProofError(f"index {index} is not below the tree size {size}")
    seed = _check_hash(leaf_hash, "leaf hash")
    expected = _check_hash(root, "root")
    nodes = _check_proof(proof)
    inner, border = _decompose(index, size)
    if len(nodes) != inner + border:
        raise MerkleProofError(
            f"wrong proof length {len(nodes)} for index {index} of {size}; want {inner + border}"
        )
    calculated = _chain_border_right(_chain_inner(seed, nodes[:inner], index), nodes[inner:])
    _require_equal(calculated, expected, "root")


def verify_consistency(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes
) -> None:
    """Check that the ``size1``-leaf tree with ``root1`` is a prefix of the one with ``root2``.

    Returns ``None``; raises :class:`MerkleProofError` on any failure
    (including ``size1 == 0``: a proof from the empty tree proves nothing).
    """
    size1 = _check_size(size1, "size1")
    size2 = _check_size(size2, "size2")
    if size2 < size1:
        raise MerkleProofError(f"size2 ({size2}) is smaller than size1 ({size1})")
    if size1 == 0:
        raise MerkleProofError("a consistency proof from the empty tree is meaningless")
    if size1 == size2:
        # Policy of the shared vectors (and the transparency-dev Go verifier):
        # equal sizes are consistent iff the proof is empty and the roots are
        # the same bytes -- checked before the 32-byte rule, as upstream does.
        if len(proof):
            raise MerkleProofError("size1 == size2, but the proof is not empty")
        if not isinstance(root1, bytes) or not isinstance(root2, bytes) or root1 != root2:
            raise MerkleProofError("size1 == size2, but the roots differ")
        return
    first = _check_hash(root1, "root1")
    second = _check_hash(root2, "root2")
    nodes = _check_proof(proof)
    if not nodes:
        raise MerkleProofError("empty consistency proof for different sizes")

    inner, border = _decompose(size1 - 1, size2)
    shift = (size1 & -size1).bit_length() - 1  # trailing zero bits of size1
    inner -= shift
    # The proof starts with the hash of the size1's largest complete subtree,
    # unless size1 is itself a power of two, whose subtree is root1.
    if size1 == 1 << shift:
        seed, rest = first, nodes
    else:
        seed, rest = nodes[0], nodes[1:]
    if len(rest) != inner + border:
        want = inner + border + (len(nodes) - len(rest))
        raise MerkleProofError(
            f"wrong proof length {len(nodes)} for sizes {size1} -> {size2}; want {want}"
        )
    mask = (size1 - 1) >> shift
    calculated1 = _chain_border_right(_chain_inner_right(seed, rest[:inner], mask), rest[inner:])
    _require_equal(calculated1, first, "root1")
    calculated2 = _chain_border_right(_chain_inner(seed, rest[:inner], mask), rest[inner:])
    _require_equal(calculated2, second, "root2")
