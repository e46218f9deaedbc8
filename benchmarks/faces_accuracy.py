"""Face detection on the seed set, and the accuracy of dlib's face network ported to
Keras, on all 8,128 unordered pairs of the 128 seed photos.

    python benchmarks/faces_accuracy.py --data ../shared/data/seed-faces

1. MTCNN: photos with a face, with several faces, seconds per photo.
2. ``dlib-resnet --head none`` descriptors from (a) MTCNN + our alignment, (b) the
   reference chips dlib itself cut, (c) whole photos (``--detector none``): ROC AUC,
   EER, accuracy at dlib's threshold 0.6 and at the best threshold. For comparison,
   face_recognition (dlib's HOG detector, tolerance 0.6) scores AUC 0.9976,
   accuracy 0.9959, EER 1.79%, with 2 of 128 photos without a face.
3. A trained Dense head on the seed protocol's test pairs (``verifier pipeline``).
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np  # noqa: E402
from common import SHARED  # noqa: E402 - first: the import path, TensorFlow quiet

from verifier import metrics  # noqa: E402
from verifier.defaults import DEFAULT_PADDING  # noqa: E402
from verifier.dlib_resnet import CHIP_SIZE, DESCRIPTOR_THRESHOLD  # noqa: E402
from verifier.images import scan_dataset  # noqa: E402
from verifier.losses import euclidean_distance_np  # noqa: E402
from verifier.preparation import PhotoPreparer  # noqa: E402


def scores(vectors: np.ndarray, identities: list[str]) -> str:
    n = len(vectors)
    a, b = np.triu_indices(n, 1)
    d = euclidean_distance_np(vectors[a], vectors[b])
    y = (np.array(identities)[a] == np.array(identities)[b]).astype(int)
    best = metrics.best_accuracy_threshold(d, y)
    return (f"pairs {len(d)}, AUC {metrics.roc_auc(d, y):.4f}, EER {metrics.eer(d, y) * 100:.2f}%, "
            f"accuracy@0.6 {metrics.threshold_metrics(d, y, DESCRIPTOR_THRESHOLD)['accuracy']:.4f}, "
            f"best accuracy {metrics.threshold_metrics(d, y, best)['accuracy']:.4f} (t={best:.3f})")


def trained_head(data: Path) -> None:
    """A Dense head trained on the seed protocol (fine-tune 0), scored on its test pairs."""
    print("\n== 3. trained Dense head (fine-tune 0), seed protocol test pairs ==")
    from jobs.pipeline import run_pipeline
    from jobs.train import TrainOptions
    from storage.database import open_database
    from storage.workspace import Workspace

    with tempfile.TemporaryDirectory() as home:
        ws = Workspace.open(home)
        result = run_pipeline(ws, open_database(ws.database_url),
                              TrainOptions(data=data, backbone="dlib-resnet", fine_tune=0.0,
                                           embedding_dim=64, epochs=20, name="dlib-head"),
                              quiet=True, echo=lambda s: None)
        m = result.evaluation.metrics
        print(f"test pairs {m['pairs']}: AUC {m['roc_auc']:.4f}, EER {m['eer'] * 100:.2f}%, "
              f"accuracy {m['accuracy']:.4f} at the calibrated threshold "
              f"{result.evaluation.threshold:.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=SHARED / "seed-faces")
    ap.add_argument("--skip-trained", action="store_true")
    args = ap.parse_args()
    from verifier.dlib_resnet import build_dlib_resnet
    from verifier.layers import Preprocess

    photos = scan_dataset(args.data).photos
    ids = [p.identity for p in photos]
    with tempfile.TemporaryDirectory() as cache:
        model = build_dlib_resnet(cache_dir=Path(cache))

        def describe(pixels: np.ndarray) -> np.ndarray:
            return np.concatenate([np.asarray(model(Preprocess("dlib")(pixels[i:i + 32].astype("float32"))))
                                   for i in range(0, len(pixels), 32)])

        print("== 1. MTCNN on the seed photos ==")
        prep = PhotoPreparer(CHIP_SIZE, "mtcnn", DEFAULT_PADDING)
        t = time.perf_counter()
        prepared = [prep.prepare(p.path) for p in photos]
        per = (time.perf_counter() - t) / len(photos)
        status = [p.status for p in prepared]
        print(f"{len(photos)} photos: {status.count('face') + status.count('several_faces')} with a face "
              f"({status.count('several_faces')} with several, the largest used), "
              f"{status.count('no_face')} without; {per * 1000:.0f} ms per photo (detection + alignment)")

        print("\n== 2. dlib-resnet --head none, all unordered pairs ==")
        aligned = describe(np.stack([p.pixels for p in prepared]))
        print(f"(a) MTCNN + alignment:  {scores(aligned, ids)}")
        ref = SHARED / "dlib-reference"
        if (ref / "descriptors.json").is_file():
            from PIL import Image

            names = [f"{p.identity}__{p.path.name}" for p in photos]
            chips = np.stack([np.asarray(Image.open(ref / "chips" / n).convert("RGB")) for n in names])
            print(f"(b) dlib's own chips:   {scores(describe(chips), ids)}")
            stored = json.loads((ref / "descriptors.json").read_text())
            desc = np.array([stored[n]["descriptor"] for n in names])
            print(f"    dlib's descriptors: {scores(desc, ids)}")
        whole = PhotoPreparer(CHIP_SIZE, "none")
        print(f"(c) whole photos:       {scores(describe(np.stack([whole.prepare(p.path).pixels for p in photos])), ids)}")

    if not args.skip_trained:
        trained_head(args.data)

if __name__ == "__main__":
    main()
