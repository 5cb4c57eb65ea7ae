"""``cyberian-prove SPEC TEXTS``: embed texts under a pinned spec and commit to the result.

Prints the output commitment, the spec hash, the chunk count, how many texts
were cut at the spec's ``max_length`` and a short environment summary;
optionally writes the embeddings (``--out``), the per-chunk commitments
(``--commitments``), a golden file, a signed local receipt, or asks a
verifier to certify the run (``--verify``). A cold start says what it is
doing on stderr (building the model, downloading its weights, starting the
embedded verifier) unless ``-q``; a warning says how many texts were cut.

Exit codes: 0 ok, 1 a check failed (``--expect``, ``--golden``, ``--verify``),
2 usage, spec, input or connection errors. Nothing is left half-written: every
output file appears whole, or not at all, with the user's normal file mode
(:mod:`cyberian._files`).
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .._files import staged_file
from .._version import __version__
from ..commitments import chunk_count, is_commitment
from ..exceptions import CyberianError, InputError
from ._common import CyberianCommand, fail

if TYPE_CHECKING:
    from ..distributed.ray_prover import RayProver
    from ..inputs import TextSource
    from ..prover import ChunkResult, Proof, Prover
    from ..signing import SigningKey
    from ..spec import Spec

__all__ = ["main"]


@contextmanager
def _staged(path: Path | None) -> Iterator[Path | None]:
    """A temporary sibling of ``path`` that replaces it only if the block succeeds."""
    if path is None:
        yield None
        return
    with staged_file(path) as staged:
        yield staged


def _progress(quiet: bool) -> Callable[[str], None] | None:
    """What a cold-start step is announced with: one line on stderr (``None`` with ``-q``)."""
    if quiet:
        return None
    return lambda line: click.echo(line, err=True)


def _write_json(path: Path, document: Any) -> None:
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")


def _environment_line(manifest: dict[str, Any]) -> str:
    libs, cpu, system = manifest["libraries"], manifest["cpu"], manifest["os"]
    line = (f"onnxruntime {manifest['engine']['version']}, numpy {libs['numpy']}, "
            f"tokenizers {libs['tokenizers']}; {cpu['model']} "
            f"({cpu['isa_level']}, class {cpu['class']}); "
            f"{system['system']} {system['machine']}")
    if "cluster" in manifest:
        cluster = manifest["cluster"]
        workers, hosts = int(cluster["workers"]), int(cluster["hosts"])
        line += (f"; ray {cluster['version']}: {workers} worker{'s' * (workers != 1)} on "
                 f"{hosts} host{'s' * (hosts != 1)}")
    kernels = manifest.get("kernels")
    if isinstance(kernels, dict):
        line += ("; fused int8 kernels" if kernels.get("fused")
                 else f"; standard int8 graph, slower ({kernels.get('reason')})")
    if "engine_drift" in manifest:
        line += f"; ENGINE DRIFT (spec pins {manifest['engine_drift']['pinned']})"
    return line


def _check_options(expect: str | None, golden: Path | None, write_golden: Path | None,
                   receipt: Path | None, signing_key: Path | None, verify: bool,
                   server: str | None) -> None:
    if expect is not None and not is_commitment(expect.lower()):
        raise click.BadParameter("must be a SHA-256 of 64 hex digits", param_hint="--expect")
    if golden is not None and write_golden is not None:
        raise click.UsageError("--golden and --write-golden exclude each other")
    if verify and signing_key is not None:
        raise click.UsageError("--verify gets its receipt from the verifier; drop --signing-key")
    if not verify and (receipt is None) != (signing_key is None):
        raise click.UsageError("--receipt needs --signing-key (or --verify)")
    if server is not None and not verify:
        raise click.UsageError("--server goes with --verify")


@click.command(cls=CyberianCommand)
@click.version_option(__version__, prog_name="cyberian-prove")
@click.argument("spec_file", metavar="SPEC", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("texts_file", metavar="TEXTS", type=click.Path(path_type=Path, allow_dash=True))
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the embeddings here (.npy, float32, one row per text).")
@click.option("--commitments", "commitments_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the per-chunk commitments and Merkle roots here (JSON).")
@click.option("--expect", metavar="HEX",
              help="Exit 1 unless the output commitment equals HEX.")
@click.option("--golden", type=click.Path(dir_okay=False, path_type=Path),
              help="Compare per-chunk commitments with this golden file; exit 1 naming changes.")
@click.option("--write-golden", type=click.Path(dir_okay=False, path_type=Path),
              help="Write a golden file for later --golden checks.")
@click.option("--verify", is_flag=True,
              help="Have a verifier re-execute the run and certify it (POST /verify); without "
                   "--server, an embedded verifier is started on loopback.")
@click.option("--server", metavar="URL",
              help="Verifier to use with --verify (default: $CYBERIAN_API_BASE, else embedded); "
                   "its API key comes from $CYBERIAN_API_KEY.")
@click.option("--receipt", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the receipt: the verifier's with --verify (default "
                   "<receipt_id>.json), else a signed local one (needs --signing-key).")
@click.option("--signing-key", type=click.Path(dir_okay=False, path_type=Path),
              help="Ed25519 private key (from `cyberian keys generate`) for --receipt.")
@click.option("--allow-engine-drift", is_flag=True,
              help="Run even if the installed ONNX Runtime is not the spec's version "
                   "(recorded in the manifest).")
@click.option("--threads", type=click.IntRange(1, 256),
              help="Override runtime.intra_op_threads (speed only; the bytes do not change).")
@click.option("--ray", "ray_address", metavar="[ADDRESS]", is_flag=False, flag_value="",
              help="Run the chunks on a Ray cluster's workers (same commitments as a local "
                   "run): ADDRESS as Ray takes it (auto, HOST:PORT, ray://HOST:PORT); "
                   "alone, $RAY_ADDRESS or a new local Ray. Give it after TEXTS, or as "
                   "--ray=ADDRESS. Needs pip install 'cyberian[ray]'.")
@click.option("--ray-workers", type=click.IntRange(1, 4096), metavar="N",
              help="Ray workers to start (default: as many as the cluster's CPUs hold, "
                   "--threads CPUs each).")
@click.option("--weights", type=click.Path(file_okay=False, path_type=Path),
              help="Folder with the source weights, if the model must be built offline.")
@click.option("-q", "--quiet", is_flag=True,
              help="No progress bar and no progress lines (warnings and results still print).")
def main(spec_file: Path, texts_file: Path, out: Path | None, commitments_file: Path | None,
         expect: str | None, golden: Path | None, write_golden: Path | None, verify: bool,
         server: str | None, receipt: Path | None, signing_key: Path | None,
         allow_engine_drift: bool, threads: int | None, ray_address: str | None,
         ray_workers: int | None, weights: Path | None, quiet: bool) -> None:
    """Embed TEXTS under the pinned SPEC and print the commitments.

    TEXTS is a UTF-8 file with one text per line, a .jsonl file with
    {"text": ...} per line (for empty texts or texts with newlines), or - for
    standard input.
    """
    from ..golden import compare_golden, load_golden  # noqa: PLC0415
    from ..inputs import open_texts  # noqa: PLC0415
    from ..models.build import ensure_model_files  # noqa: PLC0415
    from ..spec import load_spec  # noqa: PLC0415
    _check_options(expect, golden, write_golden, receipt, signing_key, verify, server)
    if ray_workers is not None and ray_address is None:
        raise click.UsageError("--ray-workers goes with --ray")
    spec = load_spec(spec_file)
    texts = open_texts(texts_file)
    golden_doc = load_golden(golden) if golden is not None else None
    key = _load_key(signing_key) if signing_key is not None else None
    progress = _progress(quiet)
    built = ensure_model_files(spec, weights_dir=weights, progress=progress)
    if built is not None and progress is not None:
        progress(f"built {built.model_path.name} and {built.tokenizer_path.name} "
                 "from the pinned weights (first use)")
    with contextlib.ExitStack() as stack:
        prover = stack.enter_context(  # the one engine check
            prover_for(spec, allow_engine_drift, threads, ray_address=ray_address,
                       ray_workers=ray_workers, progress=progress))
        if verify and "engine_drift" in prover.manifest:
            raise click.UsageError("--verify cannot certify a run under engine drift")
        if verify:  # the HTTP client and the embedded server load only when asked for
            from ._embedded import embedded_verifier  # noqa: PLC0415
            from ._verify import Verifier, certify, remote_verifier  # noqa: PLC0415
        remote = remote_verifier(server) if verify else None
        wait_embedded = (stack.enter_context(embedded_verifier(spec, threads=threads,
                                                               progress=progress))
                         if verify and remote is None else None)
        started = time.perf_counter()
        proof, kept = _prove(prover, spec, texts, out,
                             keep=golden_doc is not None or write_golden is not None,
                             block_size=spec.verification["vaas_block"] if verify else None,
                             quiet=quiet)
        prove_seconds = time.perf_counter() - started
        _warn_truncated(spec, proof)
        _print_summary(spec, proof, out)
        _write_outputs(spec, proof, kept, commitments_file, write_golden)
        if receipt is not None and key is not None:
            _write_local_receipt(receipt, key, spec, proof)
        if golden_doc is not None:
            compare_golden(golden_doc, kept)
            click.echo("golden      identical (every chunk matches)")
        if expect is not None and expect.lower() != proof.output_commitment:
            fail(f"output commitment {proof.output_commitment} differs from the expected "
                 f"{expect.lower()}", code=1)
        if verify:
            local = _local_proof_note([out, commitments_file, write_golden])
            try:
                if wait_embedded is not None:
                    embedded = wait_embedded()
                    remote = Verifier(embedded.url, embedded.api_key, embedded)
                assert remote is not None
                certify(spec, list(texts), proof, remote, receipt, write=_write_staged_json,
                        prove_seconds=prove_seconds, kept=local, rows_path=out)
            except CyberianError as exc:
                fail(f"{exc.message}; {local}" if local else exc.message, exc.exit_code)


def _local_proof_note(paths: list[Path | None]) -> str:
    """What a failed ``--verify`` says of the local proof files it keeps ("" for none).

    They are kept on purpose: they are this run's valid local result (rows,
    commitments, golden file), and only the verifier's receipt is missing.
    """
    written = [str(path) for path in paths if path is not None]
    if not written:
        return ""
    names = written[0] if len(written) == 1 else ", ".join(written[:-1]) + " and " + written[-1]
    return f"the local proof was kept in {names} (valid on its own, without a receipt)"


@contextmanager
def prover_for(spec: Spec, allow_engine_drift: bool, threads: int | None, *,
               ray_address: str | None = None, ray_workers: int | None = None,
               progress: Callable[[str], None] | None = None) -> Iterator[Prover | RayProver]:
    """The prover that ``cyberian-prove`` runs ``spec`` with, open for the block.

    A local :class:`~cyberian.prover.Prover`, or with ``ray_address`` (``""``:
    Ray's default) a :class:`~cyberian.distributed.ray_prover.RayProver`
    of ``ray_workers`` workers. The runtime is the one place the installed
    ONNX Runtime is checked (on every Ray worker): it raises
    :class:`~cyberian.exceptions.EngineDriftError` (one line, exit 2) for
    another version unless ``allow_engine_drift``, and then records the drift
    in the manifest. Each runs ``threads`` intra-op threads (``None``: the
    spec's ``runtime.intra_op_threads``).
    """
    if ray_address is None:
        from ..prover import Prover  # noqa: PLC0415

        yield Prover(spec, allow_engine_drift=allow_engine_drift, threads=threads)
        return
    from ..distributed.ray_prover import RayProver  # noqa: PLC0415

    with RayProver(spec, address=ray_address or None, workers=ray_workers, threads=threads,
                   allow_engine_drift=allow_engine_drift, progress=progress) as prover:
        yield prover


def _prove(prover: Prover | RayProver, spec: Spec, texts: TextSource, out: Path | None, *,
           keep: bool, block_size: int | None, quiet: bool) -> tuple[Proof, list[ChunkResult]]:
    from tqdm import tqdm  # noqa: PLC0415

    chunks = chunk_count(len(texts), spec.chunk_size)
    kept: list[ChunkResult] = []
    with _staged(out) as staged_out, tqdm(
        total=chunks, unit="chunk", file=sys.stderr,
        disable=True if quiet or chunks <= 1 else None,  # None: only on a terminal
        desc="proving", leave=False,
    ) as bar:
        rows_out = _open_rows(staged_out, len(texts), spec.dimensions)

        def on_chunk(chunk: ChunkResult) -> None:
            if rows_out is not None:
                rows_out[chunk.start:chunk.start + len(chunk.texts)] = chunk.rows
            if keep:
                kept.append(chunk)
            bar.update(1)

        proof = prover.prove(texts, keep_embeddings=False, block_size=block_size,
                             on_chunk=on_chunk)
        if rows_out is not None:
            rows_out.flush()
            del rows_out
    return proof, kept


def _write_staged_json(path: Path, document: Any) -> None:
    with _staged(path) as staged:
        assert staged is not None
        _write_json(staged, document)


def _write_outputs(spec: Spec, proof: Proof, kept: list[ChunkResult],
                   commitments_file: Path | None,
                   write_golden: Path | None) -> None:
    from ..golden import golden_document  # noqa: PLC0415

    if commitments_file is not None:
        _write_staged_json(commitments_file, _commitments_document(spec, proof))
    if write_golden is not None:
        _write_staged_json(write_golden, golden_document(
            spec.spec_hash, kept, proof.output_commitment, proof.manifest))
        click.echo(f"golden      {write_golden}")


def _open_rows(path: Path | None, count: int, dimensions: int) -> Any:
    if path is None:
        return None
    import numpy as np  # noqa: PLC0415

    return np.lib.format.open_memmap(path, mode="w+", dtype="<f4", shape=(count, dimensions))


def _load_key(path: Path) -> SigningKey:
    from ..signing import load_signing_key  # noqa: PLC0415

    try:
        return load_signing_key(path)
    except CyberianError:
        raise
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: not a readable Ed25519 private key ({exc})") from None


def _commitments_document(spec: Spec, proof: Proof) -> dict[str, Any]:
    from ..receipts import commitment_roots  # noqa: PLC0415

    input_root, output_root = commitment_roots(proof.chunks)
    return {
        "spec_hash": spec.spec_hash,
        "model_sha256": spec.model_sha256,
        "tokenizer_sha256": spec.tokenizer_sha256,
        "chunk_size": spec.chunk_size,
        "chunk_count": proof.chunk_count,
        "input_count": proof.input_count,
        "dimensions": spec.dimensions,
        "output_commitment": proof.output_commitment,
        "max_length": spec.max_length,
        "truncated_texts": proof.truncated_texts,
        "input_root": input_root.hex(),
        "output_root": output_root.hex(),
        "chunks": [chunk.as_dict() for chunk in proof.chunks],
        "environment": proof.manifest,
    }


def _write_local_receipt(path: Path, key: SigningKey, spec: Spec, proof: Proof) -> None:
    import uuid  # noqa: PLC0415

    from ..receipts import build_receipt_body, sign_receipt  # noqa: PLC0415

    body = build_receipt_body(
        spec=spec, kind="local", job_id=f"local_{uuid.uuid4().hex}", chunks=proof.chunks,
        input_count=proof.input_count, issuer_keyid=key.keyid,
        executor_environment=proof.manifest,
    )
    _write_staged_json(path, sign_receipt(body, key))
    click.echo(f"receipt     {path} (local, signed by {key.keyid[:16]}…, not replayed)")


def _warn_truncated(spec: Spec, proof: Proof) -> None:
    """A warning on stderr when the tokenizer cut any text at ``max_length`` (even with -q)."""
    if proof.truncated_texts:
        click.echo(f"warning: {proof.truncated_texts} of {proof.input_count} texts were longer "
                   f"than max_length {spec.max_length} tokens and were truncated", err=True)


def _print_summary(spec: Spec, proof: Proof, out: Path | None) -> None:
    click.echo(f"output_commitment  {proof.output_commitment}")
    click.echo(f"spec_hash          {spec.spec_hash}")
    click.echo(f"chunks             {proof.chunk_count} ({proof.input_count} texts, "
               f"chunk_size {spec.chunk_size})")
    click.echo(f"truncated          {proof.truncated_texts} of {proof.input_count} texts "
               f"(longer than max_length {spec.max_length} tokens)")
    click.echo(f"model              {spec.name} (sha256 {spec.model_sha256[:16]}…)")
    click.echo(f"environment        {_environment_line(proof.manifest)}")
    from ..models.recipes import cpu_independent  # noqa: PLC0415 - reads the recipe files

    if cpu_independent(spec.model_sha256):
        click.echo("portability        the same bytes on every CPU class (int8 spec)")
    if out is not None:
        click.echo(f"wrote              {out} ({proof.input_count}, {spec.dimensions}) float32")


if __name__ == "__main__":
    main()
