"""RFC 9162 Merkle trees: the shared transparency-dev vectors, properties, and attacks."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cyberian import merkle
from cyberian.exceptions import MerkleProofError

# The vectors live in the shared folder beside the repository and are never copied in
# ($CYBERIAN_RFC9162_VECTORS points elsewhere when the checkout sits somewhere else).
VECTORS = Path(os.environ.get("CYBERIAN_RFC9162_VECTORS")
               or Path(__file__).resolve().parents[2].parent / "shared" / "testdata" / "rfc9162")
# If the folder is missing this placeholder makes every vector test fail instead of skip.
VECTOR_FILES = sorted(VECTORS.rglob("*.json")) or [VECTORS / "MISSING.json"]

# Every vector passes as written, including the README's policy for equal sizes:
# equal roots (compared as bytes, before the 32-byte rule) and an empty proof.

REFERENCE_LEAVES = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
REFERENCE_ROOT = "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"


def _b64(value: str) -> bytes:
    return base64.b64decode(value)


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def _verify_vector(case: dict[str, Any]) -> None:
    proof = [_b64(node) for node in case["proof"] or []]
    if "leafIdx" in case:
        merkle.verify_inclusion(
            _b64(case["leafHash"]), case["leafIdx"], case["treeSize"], proof, _b64(case["root"])
        )
    else:
        merkle.verify_consistency(
            case["size1"], case["size2"], proof, _b64(case["root1"]), _b64(case["root2"])
        )


def test_vector_directory_is_complete() -> None:
    inclusion = list((VECTORS / "inclusion").rglob("*.json"))
    consistency = list((VECTORS / "consistency").rglob("*.json"))
    assert len(inclusion) >= 90
    assert len(consistency) >= 90


@pytest.mark.parametrize(
    "path", VECTOR_FILES, ids=[str(p.relative_to(VECTORS)) for p in VECTOR_FILES]
)
def test_vector(path: Path) -> None:
    case = _load(path)
    want_error = case["wantErr"]
    if want_error:
        with pytest.raises(MerkleProofError):
            _verify_vector(case)
    else:
        _verify_vector(case)


def test_equal_sizes_with_equal_32_byte_roots_are_consistent() -> None:
    root = hashlib.sha256(b"x").digest()
    merkle.verify_consistency(1, 1, [], root, root)
    merkle.verify_consistency(7, 7, [], root, root)
    with pytest.raises(MerkleProofError):
        merkle.verify_consistency(0, 0, [], root, root)


def test_reference_tree_root() -> None:
    assert merkle.root(REFERENCE_LEAVES).hex() == REFERENCE_ROOT


def test_empty_tree_root_is_sha256_of_nothing() -> None:
    assert merkle.root([]) == hashlib.sha256(b"").digest()


def test_single_leaf_root_is_its_leaf_hash() -> None:
    assert merkle.root([b"abc"]) == hashlib.sha256(b"\x00abc").digest()
    assert merkle.leaf_hash(b"abc") == hashlib.sha256(b"\x00abc").digest()


@pytest.mark.parametrize("path", sorted(VECTORS.rglob("happy-path.json")) or [VECTORS / "none"])
def test_generated_proofs_match_the_happy_path_vectors(path: Path) -> None:
    case = _load(path)
    expected = [_b64(node) for node in case["proof"] or []]
    if "leafIdx" in case:
        leaves = REFERENCE_LEAVES[: case["treeSize"]]
        assert merkle.inclusion_proof(leaves, case["leafIdx"]) == expected
        assert merkle.root(leaves) == _b64(case["root"])
    else:
        leaves = REFERENCE_LEAVES[: case["size2"]]
        assert merkle.consistency_proof(leaves, case["size1"]) == expected
        assert merkle.root(leaves[: case["size1"]]) == _b64(case["root1"])


def _rfc_root(leaves: list[bytes]) -> bytes:
    """RFC 9162 section 2.1.1, written as the recursive definition reads."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return hashlib.sha256(b"\x01" + _rfc_root(leaves[:k]) + _rfc_root(leaves[k:])).digest()


@pytest.mark.parametrize("size", [0, 1, 2, 3, 7, 8, 9, 1000, 100_000])
def test_root_matches_the_recursive_definition(size: int) -> None:
    # the speed of the 100,000-leaf root is measured in benchmarks/merkle_root.py
    leaves = [i.to_bytes(8, "big") for i in range(size)]
    assert merkle.root(leaves) == _rfc_root(leaves)


def test_generating_proofs_outside_the_tree_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="outside"):
        merkle.inclusion_proof([b"a", b"b"], 2)
    with pytest.raises(ValueError, match="outside"):
        merkle.inclusion_proof([b"a"], -1)
    with pytest.raises(ValueError, match="size1"):
        merkle.consistency_proof([b"a", b"b"], 0)
    with pytest.raises(ValueError, match="size1"):
        merkle.consistency_proof([b"a", b"b"], 3)


@pytest.mark.parametrize(
    ("leaf", "index", "size", "proof", "root"),
    [
        (b"\x00" * 31, 0, 1, [], b"\x00" * 32),  # short leaf hash
        (b"\x00" * 32, 0, 1, [], b"\x00" * 33),  # long root
        (b"\x00" * 32, 0, 2, [b"\x00" * 31], b"\x00" * 32),  # short proof node
        (b"\x00" * 32, True, 2, [b"\x00" * 32], b"\x00" * 32),  # bool index
        (b"\x00" * 32, 0, 2, b"\x00" * 32, b"\x00" * 32),  # a bare hash as the proof
        ("00" * 32, 0, 1, [], "00" * 32),  # hex text instead of bytes
    ],
)
def test_inclusion_input_validation(
    leaf: Any, index: Any, size: Any, proof: Any, root: Any
) -> None:
    with pytest.raises(MerkleProofError):
        merkle.verify_inclusion(leaf, index, size, proof, root)


# -- attacks on the tree shape --------------------------------------------------


def _bitcoin_root(leaves: list[bytes]) -> bytes:
    """Bitcoin-style tree: an odd level duplicates its last node (CVE-2012-2459)."""
    level = [merkle.leaf_hash(leaf) for leaf in leaves]
    while len(level) > 1:
        if len(level) % 2:
            level.append(level[-1])
        level = [
            hashlib.sha256(b"\x01" + level[i] + level[i + 1]).digest()
            for i in range(0, len(level), 2)
        ]
    return level[0]


@pytest.mark.parametrize("size", [3, 5, 6, 7, 11])
def test_duplicated_last_leaf_tree_does_not_verify(size: int) -> None:
    leaves = [bytes([i]) * 3 for i in range(size)]
    forged_root = _bitcoin_root(leaves)
    assert forged_root != merkle.root(leaves)
    # The padded tree's root equals the Bitcoin root of the odd tree, but not ours.
    padded = [*leaves, leaves[-1]] if size % 2 else leaves
    assert merkle.root(padded) != merkle.root(leaves) or padded is leaves
    last = size - 1
    for index in range(size):
        proof = merkle.inclusion_proof(leaves, index)
        with pytest.raises(MerkleProofError):
            merkle.verify_inclusion(
                merkle.leaf_hash(leaves[index]), index, size, proof, forged_root
            )
    if size % 2:
        # the duplicate's proof in the padded tree must not place it in the real tree
        dup_proof = merkle.inclusion_proof(padded, size)
        with pytest.raises(MerkleProofError):
            merkle.verify_inclusion(
                merkle.leaf_hash(leaves[last]), last, size, dup_proof, merkle.root(leaves)
            )


def test_64_byte_leaf_equal_to_a_nodes_children_is_not_that_node() -> None:
    leaves = [b"a", b"b", b"c", b"d"]
    left = merkle.root(leaves[:2])
    right = merkle.root(leaves[2:])
    real_root = merkle.root(leaves)
    assert real_root == hashlib.sha256(b"\x01" + left + right).digest()
    forged = left + right  # 64 bytes: the root node's two children as one "leaf"
    assert merkle.root([forged]) != real_root
    with pytest.raises(MerkleProofError):
        merkle.verify_inclusion(merkle.leaf_hash(forged), 0, 1, [], real_root)
    # one level down: the children of the left node, claimed as leaf 0 of a 2-leaf tree
    inner = merkle.leaf_hash(b"a") + merkle.leaf_hash(b"b")
    with pytest.raises(MerkleProofError):
        merkle.verify_inclusion(merkle.leaf_hash(inner), 0, 2, [right], real_root)


def test_inclusion_proof_does_not_bind_the_tree_size() -> None:
    # Documented RFC 9162 property: size is authenticated by whoever signs (size, root),
    # which is why a receipt signs chunk_count with its roots.
    leaves = [bytes([i]) for i in range(5)]
    proof = merkle.inclusion_proof(leaves, 0)
    merkle.verify_inclusion(merkle.leaf_hash(leaves[0]), 0, 6, proof, merkle.root(leaves))
    with pytest.raises(MerkleProofError):
        merkle.verify_inclusion(
            merkle.leaf_hash(leaves[0]), 0, 6, proof, merkle.root([*leaves, b"\x05"])
        )


# -- properties -----------------------------------------------------------------

TREES = st.tuples(st.integers(1, 1000), st.binary(max_size=6))
PROPERTY = settings(max_examples=25, deadline=None)


def _leaves(size: int, salt: bytes) -> list[bytes]:
    return [salt + i.to_bytes(4, "big") for i in range(size)]


def _flip(value: bytes, bit: int) -> bytes:
    data = bytearray(value)
    data[bit // 8 % len(data)] ^= 1 << (bit % 8)
    return bytes(data)


def _tampered_proofs(proof: list[bytes], bit: int) -> list[list[bytes]]:
    """Each node flipped, each node dropped, an extra node at either end."""
    extra = hashlib.sha256(b"extra").digest()
    variants = [[*proof[:i], _flip(proof[i], bit), *proof[i + 1 :]] for i in range(len(proof))]
    variants += [proof[:i] + proof[i + 1 :] for i in range(len(proof))]
    variants += [[*proof, extra], [extra, *proof]]
    return variants


@PROPERTY
@given(tree=TREES, data=st.data())
def test_inclusion_proofs_verify_and_any_tampering_fails(
    tree: tuple[int, bytes], data: Any
) -> None:
    size, salt = tree
    leaves = _leaves(size, salt)
    root = merkle.root(leaves)
    index = data.draw(st.integers(0, size - 1), label="index")
    bit = data.draw(st.integers(0, 255), label="bit")
    leaf = merkle.leaf_hash(leaves[index])
    proof = merkle.inclusion_proof(leaves, index)
    merkle.verify_inclusion(leaf, index, size, proof, root)

    bad: list[tuple[bytes, int, int, list[bytes], bytes]] = [
        (_flip(leaf, bit), index, size, proof, root),
        (leaf, index, size, proof, _flip(root, bit)),
        (leaf, index + 1, size, proof, root),
        (leaf, index - 1, size, proof, root),
    ]
    bad += [(leaf, index, size, variant, root) for variant in _tampered_proofs(proof, bit)]
    # size +- 1 against the real root of a tree of that size
    bad.append((leaf, index, size + 1, proof, merkle.root([*leaves, b"\xff" * 5])))
    bad.append((leaf, index, size - 1, proof, merkle.root(leaves[:-1])))
    # size +- 1 against the original root, wherever that size needs another proof length
    for other in (size - 1, size + 1):
        if index < other:
            needed = len(merkle.inclusion_proof(_leaves(other, salt), index))
            if needed != len(proof):
                bad.append((leaf, index, other, proof, root))
    for case in bad:
        with pytest.raises(MerkleProofError):
            merkle.verify_inclusion(*case)


@PROPERTY
@given(tree=TREES, data=st.data())
def test_consistency_proofs_verify_and_any_tampering_fails(
    tree: tuple[int, bytes], data: Any
) -> None:
    size2, salt = tree
    leaves = _leaves(size2, salt)
    size1 = data.draw(st.integers(1, size2), label="size1")
    bit = data.draw(st.integers(0, 255), label="bit")
    root1, root2 = merkle.root(leaves[:size1]), merkle.root(leaves)
    proof = merkle.consistency_proof(leaves, size1)
    merkle.verify_consistency(size1, size2, proof, root1, root2)

    longer = [*leaves, b"\xff" * 5]
    bad: list[tuple[int, int, list[bytes], bytes, bytes]] = [
        (size1, size2, proof, _flip(root1, bit), root2),
        (size1, size2, proof, root1, _flip(root2, bit)),
        (size1 - 1, size2, proof, merkle.root(leaves[: size1 - 1]), root2),
        (size1 + 1, size2, proof, merkle.root(longer[: size1 + 1]), root2),
        (size1, size2 - 1, proof, root1, merkle.root(leaves[:-1])),
        (size1, size2 + 1, proof, root1, merkle.root(longer)),
    ]
    bad += [(size1, size2, variant, root1, root2) for variant in _tampered_proofs(proof, bit)]
    if root1 != root2:
        bad.append((size1, size2, proof, root2, root1))
    for case in bad:
        with pytest.raises(MerkleProofError):
            merkle.verify_consistency(*case)
