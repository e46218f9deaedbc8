"""FAISS index types at gallery scale, on synthetic 64-d vectors.

    python benchmarks/index_scale.py --sizes 10000,100000,1000000

For each size and type (Flat, HNSW32, IVF): build time, index memory, search latency
per single query (p50 / p99, with the exact re-ranking the gallery applies) and
recall@10 against Flat. Printed side by side, with ratios to Flat.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from storage.index import build_index, search  # noqa: E402


def clustered(n: int, d: int, rng: np.random.Generator) -> np.ndarray:
    """Vectors around 1,000 'identities', like face embeddings."""
    centres = rng.normal(size=(1000, d)).astype(np.float32)
    return (centres[rng.integers(0, 1000, n)] + 0.35 * rng.normal(size=(n, d))).astype(np.float32)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--types", default="Flat,HNSW32,IVF1024,Flat")
    args = ap.parse_args()
    import faiss

    faiss.omp_set_num_threads(2)
    types = ["Flat", "HNSW32", "IVF1024,Flat"] if args.types == "Flat,HNSW32,IVF1024,Flat" \
        else args.types.split(";")
    rng = np.random.default_rng(0)
    print(f"{'n':>9} {'type':<14} {'build s':>8} {'MB':>8} {'p50 ms':>8} {'p99 ms':>8} "
          f"{'recall@10':>9} {'p50 vs Flat':>11}")
    for n in (int(s) for s in args.sizes.split(",")):
        vectors = clustered(n, args.dim, rng)
        ids = np.arange(n, dtype=np.int64)
        queries = vectors[rng.integers(0, n, args.queries)] + 0.1 * rng.normal(
            size=(args.queries, args.dim)).astype(np.float32)
        truth = None
        flat_p50 = None
        for factory in types:
            if factory.startswith("IVF") and n < 40 * 1024:
                factory = "IVF64,Flat"
            t = time.perf_counter()
            index = build_index(vectors, ids, factory)
            build = time.perf_counter() - t
            mb = faiss.serialize_index(index).size / 1e6
            exact = factory == "Flat"
            lat, found = [], []
            for q in queries:
                t = time.perf_counter()
                _, i = search(index, q[None, :], 10, exact=exact)
                lat.append((time.perf_counter() - t) * 1000)
                found.append(i[0])
            found = np.array(found)
            if exact:
                truth = found
            recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, truth)])
            p50, p99 = np.percentile(lat, 50), np.percentile(lat, 99)
            flat_p50 = flat_p50 or p50
            print(f"{n:>9} {factory:<14} {build:>8.2f} {mb:>8.1f} {p50:>8.3f} {p99:>8.3f} "
                  f"{recall:>9.3f} {p50 / flat_p50:>10.2f}x", flush=True)
            del index


if __name__ == "__main__":
    main()
