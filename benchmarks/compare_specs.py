"""In-process prover throughput of two specs on the same texts, side by side in one run.

Used to check that a graph change costs no speed (e.g. builder v2's portable
attention against builder v1): both provers are opened first, then each round
proves every text once with each spec, alternating which goes first, and the
fastest round of each counts.

    python benchmarks/compare_specs.py SPEC_A SPEC_B [--texts FILE] [--rounds 5] [--threads 2]

Prints texts/s of each and the ratio B / A. TEXTS defaults to the shipped
2,228-sentence corpus.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from cyberian.bench.corpus import sentences
from cyberian.environment import environment_manifest
from cyberian.inputs import read_texts
from cyberian.prover import Prover
from cyberian.spec import installed_engine_version, load_spec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("spec_a", type=Path)
    parser.add_argument("spec_b", type=Path)
    parser.add_argument("--texts", type=Path)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    texts = read_texts(args.texts) if args.texts else sentences()
    provers = {name: Prover(load_spec(path), threads=args.threads)
               for name, path in (("A", args.spec_a), ("B", args.spec_b))}
    for prover in provers.values():  # warm-up: first-run allocations out of the timing
        prover.prove(texts[:64], keep_embeddings=False)
    best = {name: float("inf") for name in provers}
    for round_index in range(args.rounds):
        order = ["A", "B"] if round_index % 2 == 0 else ["B", "A"]
        for name in order:
            start = time.perf_counter()
            provers[name].prove(texts, keep_embeddings=False)
            best[name] = min(best[name], time.perf_counter() - start)
    cpu = environment_manifest(engine_version=installed_engine_version())["cpu"]
    print(f"{len(texts)} texts, {args.threads} threads, best of {args.rounds} alternated rounds; "
          f"{cpu['model']} ({cpu['isa_level']}, class {cpu['class']})")
    for name, path in (("A", args.spec_a), ("B", args.spec_b)):
        print(f"{name} {path}: {len(texts) / best[name]:.1f} texts/s ({best[name]:.2f} s)")
    print(f"B / A = {best['A'] / best['B']:.3f}")


if __name__ == "__main__":
    main()
