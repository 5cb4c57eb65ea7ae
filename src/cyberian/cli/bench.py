"""``cyberian bench``: check determinism and measure throughput on this CPU."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ._common import CyberianGroup

if TYPE_CHECKING:
    from ..spec import Spec

__all__ = ["group"]


@click.group("bench", cls=CyberianGroup)
def group() -> None:
    """Benchmarks to run on your target CPU (determinism matrix, throughput vs peers)."""


def _texts(texts_file: Path | None, quick: bool, default_count: int | None) -> list[str]:
    from ..bench.corpus import sentences  # noqa: PLC0415
    from ..inputs import read_texts  # noqa: PLC0415

    if texts_file is not None:
        texts = read_texts(texts_file)
        return texts[:48] if quick else texts
    return sentences(48 if quick else default_count)


@group.command("throughput")
@click.argument("spec_file", metavar="SPEC", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("texts_file", metavar="[TEXTS]", required=False,
                type=click.Path(dir_okay=False, path_type=Path))
@click.option("--threads", type=click.IntRange(1, 256),
              help="Thread count for every contender (default: the spec's intra_op_threads).")
@click.option("--repeats", type=click.IntRange(1, 20), default=3, show_default=True,
              help="Rounds; each contender runs once per round and its fastest round counts.")
@click.option("--quick", is_flag=True, help="48 texts, one tuned variant: a smoke test.")
@click.option("--commands", is_flag=True,
              help="Also time whole commands (model load included): cyberian-prove vs a "
                   "sentence-transformers script (needs the bench extra).")
@click.option("--int8", "int8_file", metavar="SPEC",
              type=click.Path(dir_okay=False, path_type=Path),
              help="The int8 spec to measure beside SPEC, e.g. specs/all-minilm-l6-v2-int8.yaml "
                   "(adds our int8 prover, onnxruntime quantize_dynamic, and their quality "
                   "against the FP32 prover).")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the report as JSON here.")
@click.option("--markdown", "markdown_out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the markdown table here (it is always printed).")
def throughput(spec_file: Path, texts_file: Path | None, threads: int | None, repeats: int,
               quick: bool, commands: bool, int8_file: Path | None, json_out: Path | None,
               markdown_out: Path | None) -> None:
    """Texts/s and tokens/s of our prover vs plain and tuned ONNX Runtime, sentence-transformers
    (if installed) and the machine's FP32 matmul peak. TEXTS defaults to the shipped corpus."""
    from ..bench.throughput import measure_commands, render_markdown, run_throughput  # noqa: PLC0415
    from ..models.build import ensure_model_files  # noqa: PLC0415
    from ..spec import load_spec  # noqa: PLC0415

    spec = load_spec(spec_file)
    ensure_model_files(spec)
    int8_spec = None
    if int8_file is not None:
        int8_spec = load_spec(int8_file)
        ensure_model_files(int8_spec)
    texts = _texts(texts_file, quick, None)
    try:
        report = run_throughput(spec, texts, threads=threads, repeats=1 if quick else repeats,
                                quick=quick, int8_spec=int8_spec,
                                log=lambda m: click.echo(f"... {m}", err=True))
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    click.echo(render_markdown(report))
    if commands:
        import tempfile  # noqa: PLC0415

        from .._paths import shipped_dir  # noqa: PLC0415

        with tempfile.TemporaryDirectory() as tmp:
            texts_path = Path(tmp) / "texts.jsonl"
            texts_path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts),
                                  encoding="utf-8")
            report.commands = measure_commands(
                spec_file, texts_path, threads=report.threads,
                st_script=shipped_dir("benchmarks") / "st_embed.py", repeats=repeats,
                int8_spec_path=int8_file)
    markdown = render_markdown(report)
    if commands:
        for line in markdown.splitlines():
            if line.startswith("- whole command"):
                click.echo(line)
    if markdown_out is not None:
        markdown_out.write_text(markdown, encoding="utf-8")
    if json_out is not None:
        json_out.write_text(json.dumps(report.as_dict(), indent=2) + "\n", encoding="utf-8")


@group.command("determinism")
@click.argument("spec_file", metavar="SPEC", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("texts_file", metavar="[TEXTS]", required=False,
                type=click.Path(dir_okay=False, path_type=Path))
@click.option("--quick", is_flag=True, help="12 texts instead of 132: a smoke test.")
@click.option("--golden", type=click.Path(dir_okay=False, path_type=Path),
              help="Also compare the rows with this golden file (bit for bit on the CPU class "
                   "it was made on).")
@click.option("--write-golden", type=click.Path(dir_okay=False, path_type=Path),
              help="Write a golden file of these texts' rows for later --golden runs.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the matrix as JSON here.")
@click.option("--classes", is_flag=True,
              help="Instead of the matrix: prove the texts natively and on every emulated CPU "
                   "class (qemu), one row per class; exit 0 only if each class reproduces itself.")
@click.option("--target", "only", multiple=True, metavar="NAME",
              help="With --classes: run only native and these targets (x86_64-avx2-fma, "
                   "x86_64-avx, x86_64-sse, aarch64); repeatable.")
@click.option("--require-all", is_flag=True,
              help="With --classes: a target that cannot run (emulator missing) fails the check "
                   "(exit 2) instead of being reported as not run.")
@click.option("--inject-difference", metavar="CELL", hidden=True,
              help="Self-test: flip one bit in this cell's rows (the check must then fail).")
def determinism(spec_file: Path, texts_file: Path | None, quick: bool, golden: Path | None,
                write_golden: Path | None, json_out: Path | None, classes: bool,
                only: tuple[str, ...], require_all: bool, inject_difference: str | None) -> None:
    """Run the same texts across 3 processes x threads {1,2} x batch sizes {1,8,32} x two
    orders x two paddings; exit 0 only if all 72 cells give identical bytes.

    TEXTS defaults to the stress set plus 96 corpus sentences. With --classes, the
    same texts run natively and under emulated CPU classes instead (see
    docs/DETERMINISM.md for what each class needs installed).
    """
    from ..bench.corpus import determinism_texts  # noqa: PLC0415
    from ..bench.determinism import render_table, run_matrix  # noqa: PLC0415
    from ..inputs import read_texts  # noqa: PLC0415
    from ..models.build import ensure_model_files  # noqa: PLC0415
    from ..spec import load_spec  # noqa: PLC0415

    spec = load_spec(spec_file)
    ensure_model_files(spec)
    texts = read_texts(texts_file) if texts_file is not None else determinism_texts()
    if quick:
        texts = texts[:12]
    if classes:
        _class_check(spec_file, texts, only, require_all, json_out)
        return
    report = run_matrix(spec_file, texts, inject=inject_difference,
                        log=lambda m: click.echo(f"... {m}", err=True))
    click.echo(render_table(report, texts))
    if json_out is not None:
        json_out.write_text(json.dumps(report.as_dict(), indent=2) + "\n", encoding="utf-8")
    if golden is not None or write_golden is not None:
        _golden_check(spec, texts, golden, write_golden)
    if not report.identical:
        raise SystemExit(1)


def _class_check(spec_file: Path, texts: list[str], only: tuple[str, ...], require_all: bool,
                 json_out: Path | None) -> None:
    from ..bench.crossclass import render_classes, run_classes  # noqa: PLC0415

    try:
        report = run_classes(spec_file, texts, only=only,
                             log=lambda m: click.echo(f"... {m}", err=True))
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    click.echo(render_classes(report))
    if json_out is not None:
        json_out.write_text(json.dumps(report.as_dict(), indent=2) + "\n", encoding="utf-8")
    if report.problems():
        raise SystemExit(1)
    if require_all and report.missing():
        raise SystemExit(2)


@group.command("ops")
@click.option("--target", "only", multiple=True, metavar="NAME",
              help="Run only native and these targets; repeatable.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random inputs.")
def ops(only: tuple[str, ...], seed: int) -> None:
    """Which single ONNX ops give the same bytes natively and on each emulated CPU class
    (random inputs, one thread, no graph optimisation): the evidence for the op allow-list."""
    from ..bench.crossclass import render_ops, run_ops  # noqa: PLC0415

    try:
        report = run_ops(only=only, seed=seed, log=lambda m: click.echo(f"... {m}", err=True))
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    click.echo(render_ops(report))


def _golden_check(spec: Spec, texts: list[str], golden: Path | None,
                  write_golden: Path | None) -> None:
    from ..bench.golden import check_golden, write_golden_file  # noqa: PLC0415

    if write_golden is not None:
        write_golden_file(spec, texts, write_golden)
        click.echo(f"golden written: {write_golden}")
    if golden is not None:
        click.echo(check_golden(spec, texts, golden))


@group.command("vaas")
@click.argument("spec_file", metavar="SPEC", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("texts_file", metavar="[TEXTS]", required=False,
                type=click.Path(dir_okay=False, path_type=Path))
@click.option("--clients", type=click.IntRange(1, 64), default=8, show_default=True)
@click.option("--block", type=click.IntRange(1, 1000), default=32, show_default=True,
              help="Texts per /verify request (one claimed commitment each).")
@click.option("--workers", type=click.IntRange(1, 64), default=2, show_default=True,
              help="Executor processes of the server under test.")
@click.option("--worker-threads", type=click.IntRange(1, 256), default=1, show_default=True)
@click.option("--quick", is_flag=True, help="64 texts: a smoke test.")
@click.option("--scaling", is_flag=True,
              help="Measure SQLite and PostgreSQL, each with 1 and 2 executor processes, in "
                   "one run (--workers is then ignored).")
@click.option("--database", metavar="URL",
              help="With --scaling: a PostgreSQL server where the benchmark may CREATE "
                   "DATABASE [default: a throwaway cluster in a temp dir].")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path))
def vaas(spec_file: Path, texts_file: Path | None, clients: int, block: int, workers: int,
         worker_threads: int, quick: bool, scaling: bool, database: str | None,
         json_out: Path | None) -> None:
    """Sustained POST /verify throughput with concurrent clients vs the in-process prover."""
    from ..bench.vaas import render_scaling, render_vaas, run_scaling, run_vaas  # noqa: PLC0415
    from ..models.build import ensure_model_files  # noqa: PLC0415
    from ..spec import load_spec  # noqa: PLC0415

    spec = load_spec(spec_file)
    ensure_model_files(spec)
    texts = _texts(texts_file, False, None)[: 64 if quick else None]

    def log(message: str) -> None:
        click.echo(f"... {message}", err=True)

    if scaling:
        scaled = run_scaling(spec, texts, clients=clients, block=block,
                             worker_threads=worker_threads, database=database, log=log)
        click.echo(render_scaling(scaled))
        if json_out is not None:
            json_out.write_text(json.dumps(scaled.as_dict(), indent=2) + "\n",
                                encoding="utf-8")
        if scaled.failures:
            raise SystemExit(1)
        return
    if database is not None:
        raise click.UsageError("--database goes with --scaling")
    report = run_vaas(spec, texts, clients=clients, block=block, workers=workers,
                      worker_threads=worker_threads, log=log)
    click.echo(render_vaas(report))
    if json_out is not None:
        json_out.write_text(json.dumps(report.as_dict(), indent=2) + "\n", encoding="utf-8")
    if report.failures:
        raise SystemExit(1)


@group.command("verify-overhead")
@click.argument("spec_file", metavar="SPEC", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("texts_file", metavar="[TEXTS]", required=False,
                type=click.Path(dir_okay=False, path_type=Path))
@click.option("--count", type=click.IntRange(1), default=2000, show_default=True,
              help="How many texts (from TEXTS or the corpus).")
@click.option("--repeats", type=click.IntRange(1, 10), default=2, show_default=True)
@click.option("--quick", is_flag=True, help="32 texts, one round: a smoke test.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path))
def verify_overhead(spec_file: Path, texts_file: Path | None, count: int, repeats: int,
                    quick: bool, json_out: Path | None) -> None:
    """Wall time of cyberian-prove --verify (embedded verifier) over a plain prove."""
    from ..bench.overhead import render_overhead, run_overhead  # noqa: PLC0415
    from ..models.build import ensure_model_files  # noqa: PLC0415
    from ..spec import load_spec  # noqa: PLC0415

    ensure_model_files(load_spec(spec_file))
    texts = _texts(texts_file, False, None)[: 32 if quick else count]
    report = run_overhead(spec_file, texts, repeats=1 if quick else repeats,
                          log=lambda m: click.echo(f"... {m}", err=True))
    click.echo(render_overhead(report))
    if json_out is not None:
        json_out.write_text(json.dumps(report.as_dict(), indent=2) + "\n", encoding="utf-8")


@group.command("ray")
@click.argument("spec_file", metavar="SPEC", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("texts_file", metavar="[TEXTS]", required=False,
                type=click.Path(dir_okay=False, path_type=Path))
@click.option("--count", type=click.IntRange(1), default=2228, show_default=True,
              help="How many texts (from TEXTS or the corpus).")
@click.option("--repeats", type=click.IntRange(1, 10), default=3, show_default=True)
@click.option("--quick", is_flag=True, help="64 texts, one round: a smoke test.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path))
def ray_scaling(spec_file: Path, texts_file: Path | None, count: int, repeats: int,
                quick: bool, json_out: Path | None) -> None:
    """Texts/s on a local Ray cluster with 1 and 2 workers beside the local prover.

    Needs the ray extra. Exits 1 if a Ray proof's commitments differ from the
    local proof's.
    """
    from ..bench.ray_scaling import render_ray, run_ray  # noqa: PLC0415
    from ..distributed.ray_prover import import_ray  # noqa: PLC0415
    from ..models.build import ensure_model_files  # noqa: PLC0415
    from ..spec import load_spec  # noqa: PLC0415

    import_ray()
    spec = load_spec(spec_file)
    ensure_model_files(spec)
    texts = _texts(texts_file, False, count)[: 64 if quick else count]
    report = run_ray(spec, texts, repeats=1 if quick else repeats,
                     log=lambda m: click.echo(f"... {m}", err=True))
    click.echo(render_ray(report))
    if json_out is not None:
        json_out.write_text(json.dumps(report.as_dict(), indent=2) + "\n", encoding="utf-8")
    if report.failures:
        click.echo(f"error: commitments differ from the local run: {', '.join(report.failures)}",
                   err=True)
        raise SystemExit(1)
