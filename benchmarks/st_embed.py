"""What people run today: load sentence-transformers and embed a file (the peer command).

Used by ``cyberian bench throughput --commands`` to time a whole command,
model load included, against ``cyberian-prove`` on the same file.

    python benchmarks/st_embed.py TEXTS [--threads N] [--out FILE.npy]
"""

from __future__ import annotations

import argparse
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("texts", type=Path)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    import numpy as np
    import torch
    from sentence_transformers import SentenceTransformer

    from cyberian.inputs import read_texts
    from cyberian.models.recipes import find_recipe
    from cyberian.models.weights import source_folder

    torch.set_num_threads(args.threads)
    recipe = find_recipe(name="all-MiniLM-L6-v2")
    assert recipe is not None
    model = SentenceTransformer(str(source_folder(recipe.source)), device="cpu")
    rows = model.encode(read_texts(args.texts), batch_size=32, convert_to_numpy=True)
    if args.out is not None:
        np.save(args.out, rows.astype(np.float32))


if __name__ == "__main__":
    main()
