"""End-to-end query latency against its unavoidable part (face detection plus one
branch forward on the same photo), side by side.

    python benchmarks/query_latency.py --data ../shared/data/seed-faces

A dlib-resnet model (``--head none``, nothing to train) is built on the seed set
and the gallery embedded; then for each probe photo: (a) detection + alignment +
one forward pass, (b) the whole query path (the same, plus index search, identity
ranking and metadata). Detections are not cached between the two, so both detect.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np  # noqa: E402
from common import SEED  # noqa: E402 - first: the import path, TensorFlow quiet

from jobs.embed import embed_gallery  # noqa: E402
from jobs.live import Verifier  # noqa: E402
from jobs.train import TrainOptions, train  # noqa: E402
from storage.database import open_database  # noqa: E402
from storage.workspace import Workspace  # noqa: E402
from verifier.defaults import DEFAULT_PADDING  # noqa: E402
from verifier.dlib_resnet import CHIP_SIZE  # noqa: E402
from verifier.images import scan_dataset  # noqa: E402
from verifier.preparation import PhotoPreparer  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=SEED)
    ap.add_argument("--probes", type=int, default=16)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as home:
        ws = Workspace.open(home)
        sessions = open_database(ws.database_url)
        train(ws, TrainOptions(data=args.data, backbone="dlib-resnet", head="none", fine_tune=0.0,
                               name="q"), quiet=True, echo=lambda s: None)
        verifier = Verifier.open(ws, sessions, "q")
        loaded = verifier.loaded
        embed_gallery(ws, sessions, args.data, loaded=loaded, quiet=True)
        t = time.perf_counter()
        verifier.refresh()  # index and metadata
        open_s = time.perf_counter() - t
        probes = [str(p.path) for p in scan_dataset(args.data).photos][:: max(1, 128 // args.probes)]
        loaded.embed(loaded.load(Path(probes[0]))[None])  # warm up

        def fresh() -> None:  # no cached detections: both paths detect
            loaded.preparer = PhotoPreparer(CHIP_SIZE, "mtcnn", DEFAULT_PADDING)

        bare, full, search = [], [], []
        for probe in probes:
            fresh()
            t = time.perf_counter()
            loaded.embed(loaded.preparer.prepare(Path(probe)).pixels[None])
            bare.append(time.perf_counter() - t)
            fresh()
            t = time.perf_counter()
            vector = verifier.embed([verifier.prepare(Path(probe).read_bytes(), probe)])[0]
            t_search = time.perf_counter()
            matches, _ = verifier.rank(vector, 5)
            end = time.perf_counter()
            full.append(end - t)
            search.append(end - t_search)
            assert matches
    b, f = np.median(bare), np.median(full)
    print(f"{len(probes)} probe photos, gallery of 128 (Flat index)")
    print(f"detection + alignment + one forward: median {b * 1000:.0f} ms")
    print(f"query end to end (same + search + ranking): median {f * 1000:.0f} ms; "
          f"search and ranking alone: median {np.median(search) * 1000:.2f} ms")
    print(f"RATIO query / (detection + forward) = {f / b:.3f} (target <= 1.2)")
    print(f"opening the gallery (index + metadata, once per invocation): {open_s * 1000:.0f} ms")
    print("search in a 1,000,000-vector HNSW32 index: see benchmarks/index_scale.py")


if __name__ == "__main__":
    main()
