"""The RFC 9162 root of 100,000 leaves, against the bare hashing it cannot avoid.

A tree of n leaves needs n leaf hashes and n - 1 node hashes. The baseline
computes exactly that many SHA-256 digests of the same sizes with hashlib in
a plain loop; the ratio shows what cyberian.merkle.root adds on top (target:
well under a second in absolute terms, and close to 1x the baseline).

    python benchmarks/merkle_root.py [--leaves 100000]
"""

from __future__ import annotations

import argparse
import hashlib
import time

from cyberian import merkle


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--leaves", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    leaves = [b"cyberian/v1/out\0" + i.to_bytes(8, "big") + bytes(32) for i in range(args.leaves)]
    node = bytes(65)

    def baseline() -> None:
        for leaf in leaves:
            hashlib.sha256(b"\x00" + leaf).digest()
        for _ in range(args.leaves - 1):
            hashlib.sha256(node).digest()

    def best(run: object) -> float:
        assert callable(run)
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            run()
            times.append(time.perf_counter() - start)
        return min(times)

    ours = best(lambda: merkle.root(leaves))
    bare = best(baseline)
    print(f"root of {args.leaves:,} leaves: {ours:.3f} s; bare hashing {bare:.3f} s; "
          f"ratio {ours / bare:.2f}x")


if __name__ == "__main__":
    main()
