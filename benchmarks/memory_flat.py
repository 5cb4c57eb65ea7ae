"""Memory stays flat: peak RSS of cyberian-prove on 10,000 vs 100,000 texts.

The prover streams inputs a window of chunks at a time and writes rows into
the output .npy as they come, so the peak should not grow with the input
beyond the texts themselves. Uses the tiny random-weight model (same graph
layout, same streaming code) so 100,000 texts take a minute, not an hour.

    python benchmarks/memory_flat.py [--small 10000] [--large 100000]

Prints both peaks and their ratio (target: under 1.5x for 10x the texts).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cyberian.models.tiny import write_tiny_spec


def peak_rss_mib(spec: Path, texts: Path, out: Path) -> tuple[float, float]:
    """Peak RSS (MiB) and wall time of one cyberian-prove run, in a fresh child."""
    script = ("import resource, subprocess, sys;"
              "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL);"
              "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", script, sys.executable, "-m",
                           "cyberian.cli.prove", str(spec), str(texts), "--out", str(out), "-q"],
                          check=True, capture_output=True, text=True)
    return int(done.stdout.strip()) / 1024, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        spec = write_tiny_spec(folder, chunk_size=32)
        results = {}
        for count in (args.small, args.large):
            texts = folder / f"texts-{count}.txt"
            texts.write_text("".join(f"text number {i} about the proof of a model\n"
                                     for i in range(count)), encoding="utf-8")
            results[count] = peak_rss_mib(spec, texts, folder / f"out-{count}.npy")
            print(f"{count:>7} texts: peak RSS {results[count][0]:.0f} MiB "
                  f"in {results[count][1]:.1f} s")
        ratio = results[args.large][0] / results[args.small][0]
        print(f"peak RSS ratio for {args.large // args.small}x the texts: {ratio:.2f}x")


if __name__ == "__main__":
    main()
