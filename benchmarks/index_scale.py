"""FAISS index types at gallery scale, on synthetic 64-d vectors.

    python benchmarks/index_scale.py --sizes 10000,100000,1000000
    python benchmarks/index_scale.py --streaming 10000000 --factory IVF16384,PQ32

With --streaming N: N clustered 128-d vectors written in chunks to a file that stands
for the database (never all in memory), an index built by streaming them (trained on a
sample), queried with exact re-ranking that reads the candidates' stored vectors from
that file; build time, peak memory, index size, p50/p99 latency and recall@10 against
brute force (streamed) on a sample of queries.

For each size and type (Flat, HNSW32, IVF): build time, index memory, search latency
per single query (p50 / p99, with the exact re-ranking the gallery applies) and
recall@10 against Flat. Printed side by side, with ratios to Flat.
"""
from __future__ import annotations

import argparse
import time

import common  # noqa: E402,F401 - first: the import path, TensorFlow quiet
import numpy as np  # noqa: E402

from storage.index import build_index, search  # noqa: E402


def clustered(n: int, d: int, rng: np.random.Generator) -> np.ndarray:
    """Vectors around 1,000 'identities', like face embeddings."""
    centres = rng.normal(size=(1000, d)).astype(np.float32)
    return (centres[rng.integers(0, 1000, n)] + 0.35 * rng.normal(size=(n, d))).astype(np.float32)


def timed_searches(index, qs: np.ndarray, rerank: int, stored) -> tuple[list[float], list]:
    """Each query searched alone (10 nearest, re-ranked on the stored vectors): the
    milliseconds each took and the ids found."""
    lat, found = [], []
    for q in qs:
        t = time.perf_counter()
        _, i = search(index, q[None, :], 10, exact=False, rerank_factor=rerank, stored=stored)
        lat.append((time.perf_counter() - t) * 1000)
        found.append(i[0])
    return lat, found


def brute_force_streamed(qs: np.ndarray, chunks, k: int) -> np.ndarray:
    """The ids of the ``k`` nearest stored vectors of each query, chunk by chunk."""
    best_d = np.full((len(qs), k), np.inf)
    best_i = np.zeros((len(qs), k), np.int64)
    for ids, vecs in chunks:
        dist = ((qs ** 2).sum(1)[:, None] - 2 * qs @ vecs.T + (vecs ** 2).sum(1)[None, :])
        cand_d = np.concatenate([best_d, dist], 1)
        cand_i = np.concatenate([best_i, np.broadcast_to(ids, dist.shape)], 1)
        order = np.argsort(cand_d, 1)[:, :k]
        best_d = np.take_along_axis(cand_d, order, 1)
        best_i = np.take_along_axis(cand_i, order, 1)
    return best_i


def streaming(n: int, factory: str, train_sample: int, queries: int, nprobe: int,
              rerank: int) -> None:
    import os
    import resource
    import tempfile

    import faiss

    from storage.index import build_index_streaming

    faiss.omp_set_num_threads(2)
    d, chunk = 128, 200_000
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(100_000, d)).astype(np.float32)  # 100,000 'identities'
    row = d * 4

    def make(start: int, count: int) -> np.ndarray:
        r = np.random.default_rng(start)
        return (centres[r.integers(0, len(centres), count)]
                + 0.35 * r.normal(size=(count, d))).astype(np.float32)

    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR")) as tmp:
        store = os.path.join(tmp, "vectors.f32")
        t = time.perf_counter()
        with open(store, "wb") as handle:
            for start in range(0, n, chunk):
                handle.write(make(start, min(chunk, n - start)).tobytes())
        print(f"{n} vectors written to the stand-in database ({n * row / 1e9:.1f} GB) in "
              f"{time.perf_counter() - t:.0f} s", flush=True)
        fd = os.open(store, os.O_RDONLY)

        def chunks():
            for start in range(0, n, chunk):
                count = min(chunk, n - start)
                data = os.pread(fd, count * row, start * row)
                yield np.arange(start, start + count, dtype=np.int64), \
                    np.frombuffer(data, np.float32).reshape(count, d)

        def stored(ids: np.ndarray) -> np.ndarray:
            return np.stack([np.frombuffer(os.pread(fd, row, int(i) * row), np.float32) for i in ids])

        sample = np.sort(rng.choice(n, min(n, train_sample), replace=False))
        train = stored(sample)
        t = time.perf_counter()
        index = build_index_streaming(chunks(), d, factory, train)
        build = time.perf_counter() - t
        faiss.extract_index_ivf(index.index).nprobe = nprobe
        size = faiss.serialize_index(index).size / 1e9
        picks = rng.integers(0, n, queries)
        qs = stored(picks) + 0.1 * rng.normal(size=(queries, d)).astype(np.float32)
        lat, found = timed_searches(index, qs, rerank, stored)
        best_i = brute_force_streamed(qs, chunks(), 10)
        recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, best_i)])
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20
        os.close(fd)
    print(f"{factory} over {n} vectors (trained on {len(sample)}): build {build:.0f} s, index "
          f"{size:.2f} GB, peak RSS {peak:.2f} GB (goal < 4), nprobe {nprobe}, re-rank {rerank}x: "
          f"p50 {np.percentile(lat, 50):.2f} ms, p99 {np.percentile(lat, 99):.2f} ms (goal p50 < 10), "
          f"recall@10 {recall:.3f} (goal >= 0.95)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--streaming", type=int, help="vectors of the streaming build (e.g. 10000000)")
    ap.add_argument("--factory", default="IVF16384,PQ32")
    ap.add_argument("--train-sample", type=int, default=262_144)
    ap.add_argument("--nprobe", type=int, default=64)
    ap.add_argument("--rerank", type=int, default=10, help="candidates per result re-ranked")
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--types", default="Flat,HNSW32,IVF1024,Flat")
    args = ap.parse_args()
    if args.streaming:
        streaming(args.streaming, args.factory, args.train_sample, args.queries, args.nprobe,
                  args.rerank)
        return
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
