"""The receipt checks beyond ``format``: signature, keys, chunks, roots, sampling, replays.

Each check takes a :class:`~cyberian.receipts._fields.Context`, returns a
detail string when it passes and raises ``CheckError`` when it fails.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from ..commitments import chunk_count
from ..sampling import (
    ESCAPE_FRACTIONS,
    NONCE_BYTES,
    PROCEDURE,
    auto_rate,
    draw_indices,
    escape_estimates,
    resolve_sampling,
    sample_seed,
    sample_size,
)
from ..signing import ALG, b64decode_strict, pae
from ._fields import (
    CheckError,
    Context,
    as_hex,
    as_int,
    as_ints,
    as_list,
    as_number,
    as_object,
    check_format,
    check_receipt_hash,
    check_version,
    close,
    listing,
    need,
    show,
)
from ._format import EMPTY_ROOT, PAYLOAD_TYPE, Tree, replay_root, tree_root
from .units import unit_name

_SAMPLING_KEYS: Final = ("procedure", "rate", "k", "nonce", "seed", "indices", "auto", "escape")
_AUTO_KEYS: Final = ("reward", "penalty", "cost", "collusion", "bound", "margin", "deterrent")
_ESCAPE_KEYS: Final = ("fraction", "faked_chunks", "probability", "approximation")

# -- signature and key -------------------------------------------------------


def _signature_parts(receipt: Mapping[str, Any]) -> tuple[str, bytes]:
    signature = need(receipt, "signature")
    if isinstance(signature, list):
        raise CheckError(f"signature must be one object, got a list of {len(signature)}")
    signature = as_object(signature, "signature", ("alg", "keyid", "sig"))
    if signature["alg"] != ALG:
        raise CheckError(f"signature.alg must be {ALG!r}, got {show(signature['alg'])}")
    keyid = as_hex(signature["keyid"], "signature.keyid")
    try:
        raw = b64decode_strict(signature["sig"])
    except ValueError as exc:
        raise CheckError(f"signature.sig: {exc}") from None
    if len(raw) != 64:
        raise CheckError(f"signature.sig must be 64 bytes, got {len(raw)}")
    return keyid, raw


def _check_signature(ctx: Context) -> str:
    keyid, raw = _signature_parts(ctx.receipt)
    key = ctx.trusted.get(keyid)
    if key is None:
        raise CheckError(f"signed by key {keyid}, which is not trusted; signature not checked")
    message = pae(PAYLOAD_TYPE, ctx.canonical())
    if not key.verify(raw, message):
        raise CheckError(f"the Ed25519 signature does not verify with key {keyid}")
    return f"ed25519, key {keyid}"


def _check_trusted_key(ctx: Context) -> str:
    if not ctx.trusted:
        raise CheckError("no trusted keys were given")
    signature = ctx.receipt.get("signature")
    keyid = signature.get("keyid") if isinstance(signature, Mapping) else None
    if not isinstance(keyid, str):
        raise CheckError("the receipt names no signing keyid")
    if keyid not in ctx.trusted:
        raise CheckError(f"key {show(keyid)} is not among the {len(ctx.trusted)} trusted key(s)")
    issuer = ctx.body.get("issuer")
    issuer_keyid = issuer.get("keyid") if isinstance(issuer, Mapping) else None
    if issuer_keyid != keyid:
        raise CheckError(f"issuer.keyid {show(issuer_keyid)} differs from signature.keyid {keyid}")
    return keyid


# -- chunks, counts and roots -----------------------------------------------



def _chunk(entry: Any, position: int) -> Mapping[str, Any]:
    where = f"chunks[{position}]"
    chunk = as_object(entry, where, ("index", "input_commitment", "output_commitment"))
    as_int(chunk["index"], f"{where}.index")
    as_hex(chunk["input_commitment"], f"{where}.input_commitment")
    as_hex(chunk["output_commitment"], f"{where}.output_commitment")
    return chunk


def _valid_chunks(body: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [_chunk(entry, i) for i, entry in enumerate(as_list(need(body, "chunks"), "chunks"))]


def _check_chunks(ctx: Context) -> str:
    entries = as_list(need(ctx.body, "chunks"), "chunks")
    if not entries:
        raise CheckError("chunks is empty")
    problems = []
    for position, entry in enumerate(entries):
        try:
            chunk = _chunk(entry, position)
            if chunk["index"] != position:
                index = chunk["index"]
                raise CheckError(f"chunks[{position}].index is {index}; must be {position}")
        except CheckError as exc:
            problems.append(str(exc))
    if problems:
        raise CheckError(listing(problems))
    return f"{len(entries)} {unit_name(ctx.body.get('kind'))}(s)"


def _check_counts(ctx: Context) -> str:
    count = as_int(need(ctx.body, "chunk_count"), "chunk_count", 1)
    size = as_int(need(ctx.body, "chunk_size"), "chunk_size", 1)
    inputs = as_int(need(ctx.body, "input_count"), "input_count", 1)
    problems = []
    chunks = ctx.body.get("chunks")
    if isinstance(chunks, list) and len(chunks) != count:
        problems.append(f"chunk_count is {count} but {len(chunks)} chunks are listed")
    expected = chunk_count(inputs, size)
    if count != expected:
        problems.append(
            f"chunk_count is {count} but {inputs} inputs in chunks of {size} make {expected}"
        )
    if problems:
        raise CheckError("; ".join(problems))
    return f"{inputs} inputs in {count} {unit_name(ctx.body.get('kind'))}(s) of up to {size}"


def _rebuilt(body: Mapping[str, Any], tree: Tree) -> str:
    try:
        chunks = _valid_chunks(body)
    except CheckError as exc:
        raise CheckError(f"cannot rebuild the {tree} tree: {exc}") from None
    return tree_root(chunks, tree)


def _check_root(ctx: Context, tree: Tree) -> str:
    name, alias = f"{tree}_root", f"{tree}s_root"
    stated = as_hex(need(ctx.body, name), name)
    problems = []
    if ctx.body.get(alias) != stated:
        problems.append(f"{alias} {show(ctx.body.get(alias))} differs from {name}")
    if tree == "output" and ctx.body.get("executor_attestation_ids") != [stated]:
        problems.append("executor_attestation_ids must be [output_root]")
    rebuilt = _rebuilt(ctx.body, tree)
    if rebuilt != stated:
        problems.append(f"{name} is {stated} but the chunks hash to {rebuilt}")
    if problems:
        raise CheckError("; ".join(problems))
    return stated


def _replay(entry: Any, position: int) -> Mapping[str, Any]:
    where = f"replays[{position}]"
    record = as_object(entry, where, ("index", "output_commitment", "match"))
    as_int(record["index"], f"{where}.index")
    as_hex(record["output_commitment"], f"{where}.output_commitment")
    if not isinstance(record["match"], bool):
        raise CheckError(f"{where}.match must be true or false")
    return record


def _valid_replays(body: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [_replay(entry, i) for i, entry in enumerate(as_list(need(body, "replays"), "replays"))]


def _check_proof_root(ctx: Context) -> str:
    stated = as_hex(need(ctx.body, "proof_root"), "proof_root")
    problems = []
    if ctx.body.get("verification_attestation") != stated:
        problems.append("verification_attestation differs from proof_root")
    try:
        rebuilt = replay_root(_valid_replays(ctx.body))
    except CheckError as exc:
        raise CheckError(f"cannot rebuild the replay tree: {exc}") from None
    if rebuilt != stated:
        problems.append(f"proof_root is {stated} but the replay records hash to {rebuilt}")
    if problems:
        raise CheckError("; ".join(problems))
    return "empty tree (nothing replayed)" if stated == EMPTY_ROOT else stated


# -- sampling and replays ------------------------------------------------------


def _escape_problems(entries: Any, rate: float, k: int, n: int) -> list[str]:
    entries = as_list(entries, "sampling.escape")
    expected = escape_estimates(rate, k, n)
    if len(entries) != len(ESCAPE_FRACTIONS):
        return [f"sampling.escape must have {len(ESCAPE_FRACTIONS)} entries"]
    problems = []
    for i, (entry, want) in enumerate(zip(entries, expected, strict=True)):
        where = f"sampling.escape[{i}]"
        got = as_object(entry, where, _ESCAPE_KEYS)
        same = (
            as_number(got["fraction"], f"{where}.fraction") == want.fraction
            and as_int(got["faked_chunks"], f"{where}.faked_chunks") == want.faked_chunks
            and close(as_number(got["probability"], f"{where}.probability"), want.probability)
            and close(as_number(got["approximation"], f"{where}.approximation"), want.approximation)
        )
        if not same:
            problems.append(f"{where} is not {want.as_dict()}")
    return problems


def _auto_problems(auto: Any, rate: float) -> list[str]:
    if auto is None:
        return []
    given = as_object(auto, "sampling.auto", _AUTO_KEYS)
    inputs = [as_number(given[key], f"sampling.auto.{key}") for key in _AUTO_KEYS[:4]]
    try:
        want = auto_rate(*inputs)
    except ValueError as exc:
        return [f"sampling.auto: {exc}"]
    problems = []
    if rate != want.rate:
        problems.append(f"sampling.rate {rate} is not the auto rate {want.rate} of its inputs")
    if not close(as_number(given["bound"], "sampling.auto.bound"), want.bound):
        problems.append(f"sampling.auto.bound is not {want.bound}")
    if given["margin"] != want.margin or given["deterrent"] is not want.deterrent:
        problems.append(f"sampling.auto margin/deterrent must be {want.margin}/{want.deterrent}")
    return problems


def _check_sampling(ctx: Context) -> str:
    sampling = as_object(need(ctx.body, "sampling"), "sampling", _SAMPLING_KEYS)
    n = as_int(need(ctx.body, "chunk_count"), "chunk_count", 1)
    rate = as_number(sampling["rate"], "sampling.rate")
    k = as_int(sampling["k"], "sampling.k")
    indices = as_ints(sampling["indices"], "sampling.indices")
    problems = []
    if sampling["procedure"] != PROCEDURE:
        problems.append(f"unknown sampling.procedure {show(sampling['procedure'])}")
    if ctx.body.get("kind") == "local":
        if (rate, k, indices) != (0, 0, []) or any(
            sampling[key] is not None for key in ("nonce", "seed", "auto")
        ):
            problems.append("a local receipt samples nothing: rate 0, k 0, no nonce/seed/indices")
        problems += _escape_problems(sampling["escape"], 0.0, 0, n)
        if problems:
            raise CheckError(listing(problems))
        return "nothing sampled (local receipt)"
    if not 0 < rate <= 1:
        raise CheckError(f"sampling.rate must be in (0, 1], got {rate}")
    nonce = as_hex(sampling["nonce"], "sampling.nonce", NONCE_BYTES)
    stated_seed = as_hex(sampling["seed"], "sampling.seed")
    roots = [as_hex(need(ctx.body, name), name) for name in ("input_root", "output_root")]
    seed = sample_seed(bytes.fromhex(roots[0]), bytes.fromhex(roots[1]), bytes.fromhex(nonce))
    if stated_seed != seed.hex():
        problems.append("sampling.seed does not follow from input_root, output_root and nonce")
    want_k = sample_size(rate, n)
    if k != want_k:
        problems.append(f"sampling.k is {k}, but rate {rate} of {n} chunks gives {want_k}")
    want_indices = draw_indices(seed, want_k, n)
    if indices != want_indices:
        problems.append(
            f"sampled indices {show(indices)} do not follow from the seed "
            f"(want {show(want_indices)})"
        )
    problems += _auto_problems(sampling["auto"], rate)
    problems += _escape_problems(sampling["escape"], rate, k, n)
    if problems:
        raise CheckError(listing(problems))
    return f"{k} of {n} {unit_name(ctx.body.get('kind'))}(s) drawn from the seed (rate {rate})"


def _check_replays(ctx: Context) -> str:
    records = _valid_replays(ctx.body)
    if ctx.body.get("kind") == "local":
        if records:
            raise CheckError("a local receipt has no replay records")
        return "not replayed (local receipt: no independent re-run)"
    if not records:
        raise CheckError("no replay records: nothing was independently re-run")
    sampling = ctx.body.get("sampling")
    if not isinstance(sampling, Mapping):
        raise CheckError("cannot match replays to sampling.indices")
    indices = as_ints(sampling.get("indices"), "sampling.indices")
    problems = []
    replayed = [record["index"] for record in records]
    if replayed != indices:
        problems.append(f"replayed chunks {show(replayed)} are not the sampled {show(indices)}")
    executor: dict[int, Any] = {}
    chunks = ctx.body.get("chunks")
    for entry in chunks if isinstance(chunks, list) else []:
        if isinstance(entry, Mapping) and isinstance(entry.get("index"), int):
            executor.setdefault(entry["index"], entry.get("output_commitment"))
    for record in records:
        index = record["index"]
        if not record["match"]:
            problems.append(f"chunk {index}: the independent replay disagreed with the executor")
        elif executor.get(index) != record["output_commitment"]:
            problems.append(f"chunk {index}: marked as a match but the output commitments differ")
    if problems:
        raise CheckError(listing(problems))
    unit = unit_name(ctx.body.get("kind"))
    return f"{len(records)} {unit}(s) independently replayed, all bitwise equal"


def _check_spec(ctx: Context) -> str:
    spec = ctx.spec
    assert spec is not None
    problems = [
        f"{name} differs from the spec's"
        for name, want in (
            ("spec_hash", spec.spec_hash),
            ("model_sha256", spec.model_sha256),
            ("tokenizer_sha256", spec.tokenizer_sha256),
            ("dimensions", spec.dimensions),
        )
        if ctx.body.get(name) != want
    ]
    kind = ctx.body.get("kind")
    if kind in ("job", "local") and ctx.body.get("chunk_size") != spec.chunk_size:
        problems.append(f"chunk_size differs from the spec's {spec.chunk_size}")
    sampling = ctx.body.get("sampling")
    if kind in ("job", "vaas") and isinstance(sampling, Mapping):
        n = as_int(need(ctx.body, "chunk_count"), "chunk_count", 1)
        plan = resolve_sampling(spec.verification, n)
        auto = plan.auto.as_dict() if plan.auto is not None else None
        if sampling.get("rate") != plan.rate or sampling.get("auto") != auto:
            problems.append(f"sampling rate is not the spec's ({plan.rate})")
    if problems:
        raise CheckError("; ".join(problems))
    return f"matches spec {spec.spec_hash}"


CHECK_FUNCTIONS: Final[dict[str, Callable[[Context], str]]] = {  # every check, by name
    "format": check_format,
    "version": check_version,
    "receipt_hash": check_receipt_hash,
    "signature": _check_signature,
    "trusted_key": _check_trusted_key,
    "chunks": _check_chunks,
    "counts": _check_counts,
    "input_root": lambda ctx: _check_root(ctx, "input"),
    "output_root": lambda ctx: _check_root(ctx, "output"),
    "proof_root": _check_proof_root,
    "sampling": _check_sampling,
    "replays": _check_replays,
    "spec": _check_spec,
}
