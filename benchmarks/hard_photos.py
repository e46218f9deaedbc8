"""Hard photos: the seed photos degraded (seeded) and scored, this project beside
face_recognition, in one run.

    python benchmarks/hard_photos.py [--seed 0] [--skip-peer]

Every seed photo is degraded seven ways (`verifier.degrade`: grayscale, light from
one side, faces 40-60 px wide, JPEG quality 10-20, Gaussian and motion blur, a dark
band over the eyes), placed on the face the detector finds in the clean photo. Per
degradation, and pooled over all of them:

- faces found (a photo without one is embedded whole, for both systems);
- all 8,128 pairs of the degraded photos: ROC AUC, EER, TAR at FAR 1e-3;
- identification: each degraded photo against the 127 other clean photos, the
  nearest one's person right (top-1).

This project is dlib-resnet with MTCNN faces (the defaults users get), without and
with flip averaging (`--tta flip`), and with the face chip's histogram equalised
(contrast normalisation, a candidate default); face_recognition is dlib's HOG
detector and the same network, where installed. Then whether face quality
(`verifier.quality`) predicts errors: the EER of the pooled degraded and clean
pairs where both faces reach a quality cut, against all pairs. Last, the faces
MTCNN finds at lower thresholds of its last stage (a candidate default).
"""
from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from pathlib import Path

import numpy as np  # noqa: E402
from common import SEED  # noqa: E402 - first: the import path, TensorFlow quiet

CUTS = (0.3, 0.5, 0.7)


def png(image: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "PNG")
    return buf.getvalue()


def degraded_sets(paths: list[Path], seed: int) -> dict[str, list[bytes]]:
    """``{"clean": [...], "grayscale": [...], ...}``: the photos' bytes per condition."""
    from verifier.degrade import DEGRADATIONS
    from verifier.faces import LANDMARKS, MTCNNDetector, largest_first
    from verifier.images import load_image

    detector = MTCNNDetector()
    sets: dict[str, list[bytes]] = {"clean": [p.read_bytes() for p in paths]}
    for n, path in enumerate(paths):
        image = load_image(path)
        face = largest_first(detector.detect(image))[0]
        marks = dict(zip(LANDMARKS, face.landmarks))
        for k, (name, fn) in enumerate(DEGRADATIONS.items()):
            rng = np.random.default_rng([seed, n, k])
            sets.setdefault(name, []).append(png(fn(image, rng, face.box, marks)))
    return sets


def scores(vectors: np.ndarray, clean: np.ndarray, people: np.ndarray) -> dict:
    from verifier import metrics

    i, j = np.triu_indices(len(people), k=1)
    d = np.linalg.norm(vectors[i] - vectors[j], axis=1)
    y = (people[i] == people[j]).astype(int)
    cross = np.linalg.norm(vectors[:, None] - clean[None], axis=2)
    np.fill_diagonal(cross, np.inf)
    top1 = float((people[cross.argmin(1)] == people).mean())
    return {"auc": metrics.roc_auc(d, y), "eer": metrics.eer(d, y),
            "tar": metrics.tar_at_far(d, y, 1e-3), "top1": top1, "d": d, "y": y}


def ours(sets: dict[str, list[bytes]], home: Path) -> dict[str, dict]:
    """Per condition: found, qualities, and vectors for each variant."""
    from PIL import Image, ImageOps

    from jobs.models import load_model
    from storage.workspace import Workspace

    loaded = load_model(Workspace.open(home), "m")
    out = {}
    for name, photos in sets.items():
        prepared = [loaded.preparer.prepare_bytes(data, f"{name} {n}", require_face=False, remember=False)
                    for n, data in enumerate(photos)]
        pixels = np.stack([p.pixels for p in prepared])
        equalised = np.stack([np.asarray(ImageOps.equalize(Image.fromarray(np.asarray(p, np.uint8))))
                              for p in pixels])
        loaded.config = loaded.config.with_tta("none")
        plain = loaded.embed(pixels)
        loaded.config = loaded.config.with_tta("flip")
        flip = loaded.embed(pixels)
        loaded.config = loaded.config.with_tta("none")
        out[name] = {"found": sum(p.face is not None for p in prepared),
                     "quality": np.array([p.quality.score if p.quality else 0.0 for p in prepared]),
                     "none": plain, "flip": flip, "equalise": loaded.embed(equalised)}
    return out


def peer(sets: dict[str, list[bytes]]) -> dict[str, dict] | None:
    try:
        import face_recognition
    except ImportError:
        print("face_recognition: not installed (pip install dlib-bin face_recognition_models && "
              "pip install --no-deps face_recognition); skipped")
        return None
    out = {}
    for name, photos in sets.items():
        vectors, found = [], 0
        for data in photos:
            image = face_recognition.load_image_file(io.BytesIO(data))
            boxes = face_recognition.face_locations(image)
            found += bool(boxes)
            if boxes:
                largest = max(boxes, key=lambda b: (b[2] - b[0]) * (b[1] - b[3]))
            else:
                largest = (0, image.shape[1], image.shape[0], 0)
            vectors.append(face_recognition.face_encodings(image, [largest])[0])
        out[name] = {"found": found, "none": np.array(vectors, np.float32)}
    return out


def table(title: str, results: dict[str, dict], variant: str, people: np.ndarray) -> dict[str, dict]:
    print(f"\n{title}")
    print(f"{'condition':<16}{'faces':>8}{'ROC AUC':>9}{'EER %':>8}{'TAR@1e-3':>10}{'top-1':>8}")
    clean = results["clean"][variant]
    rows, pooled_d, pooled_y, top = {}, [], [], []
    for name, r in results.items():
        s = scores(r[variant], clean, people)
        rows[name] = s
        if name != "clean":
            pooled_d.append(s["d"])
            pooled_y.append(s["y"])
            top.append(s["top1"])
        print(f"{name:<16}{r['found']:>5}/{len(people):<3}{s['auc']:>8.4f}{100 * s['eer']:>8.2f}"
              f"{s['tar']:>10.4f}{s['top1']:>8.3f}")
    from verifier import metrics

    d, y = np.concatenate(pooled_d), np.concatenate(pooled_y)
    found = sum(r["found"] for n, r in results.items() if n != "clean")
    total = len(people) * (len(results) - 1)
    print(f"{'all degraded':<16}{found:>4}/{total:<4}{metrics.roc_auc(d, y):>8.4f}"
          f"{100 * metrics.eer(d, y):>8.2f}{metrics.tar_at_far(d, y, 1e-3):>10.4f}{np.mean(top):>8.3f}")
    return rows


def quality_effect(results: dict[str, dict], people: np.ndarray, variant: str) -> None:
    """EER of the pairs (within each condition, pooled) whose faces both reach a cut."""
    from verifier import metrics

    i, j = np.triu_indices(len(people), k=1)
    ds, ys, qs = [], [], []
    for r in results.values():
        v = r[variant]
        ds.append(np.linalg.norm(v[i] - v[j], axis=1))
        ys.append((people[i] == people[j]).astype(int))
        qs.append(np.minimum(r["quality"][i], r["quality"][j]))
    d, y, q = np.concatenate(ds), np.concatenate(ys), np.concatenate(qs)
    print(f"\nface quality against errors (dlib-resnet, tta {variant}; every condition's pairs, clean included)")
    print(f"{'pairs':<28}{'kept':>8}{'EER %':>8}{'ROC AUC':>9}")
    print(f"{'all':<28}{len(d):>8}{100 * metrics.eer(d, y):>8.2f}{metrics.roc_auc(d, y):>9.4f}")
    for cut in CUTS:
        keep = q >= cut
        print(f"{'both faces quality >= %.1f' % cut:<28}{int(keep.sum()):>8}"
              f"{100 * metrics.eer(d[keep], y[keep]):>8.2f}{metrics.roc_auc(d[keep], y[keep]):>9.4f}")
        low = ~keep
        if low.any() and y[low].any() and (~y[low].astype(bool)).any():
            print(f"{'  the rest (below the cut)':<28}{int(low.sum()):>8}"
                  f"{100 * metrics.eer(d[low], y[low]):>8.2f}{metrics.roc_auc(d[low], y[low]):>9.4f}")


def detector_sweep(sets: dict[str, list[bytes]]) -> None:
    """Faces MTCNN finds at lower thresholds of its last stage (the package's 0.8 is
    the default): occluded and dark faces found, against extra detections."""
    from verifier.faces import MTCNNDetector
    from verifier.images import decode_image

    pipeline = MTCNNDetector()._model()
    shown = ("clean", "eye_band", "side_light", "gaussian_blur")
    images = {name: [decode_image(data) for data in sets[name]] for name in shown}
    print("\nMTCNN's last-stage threshold: photos with a face found (+ extra faces found)")
    print(f"{'threshold':<11}" + "".join(f"{name:>18}" for name in shown))
    for threshold in (0.8, 0.7, 0.6, 0.5):
        cells = []
        for name in shown:
            counts = [len(pipeline.detect(image, threshold_onet=threshold)) for image in images[name]]
            found = sum(c > 0 for c in counts)
            cells.append(f"{found}/{len(counts)} (+{sum(max(0, c - 1) for c in counts)})")
        print(f"{threshold:<11}" + "".join(f"{c:>18}" for c in cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-peer", action="store_true")
    args = parser.parse_args()
    if not SEED.is_dir():
        sys.exit(f"the seed photos are absent ({SEED})")
    from benchmarks.serve_load import dlib_workspace

    paths = sorted(SEED.rglob("*.png"))
    people = np.array([p.parent.name for p in paths])
    t = time.perf_counter()
    sets = degraded_sets(paths, args.seed)
    print(f"{len(paths)} seed photos x {len(sets) - 1} degradations built in {time.perf_counter() - t:.0f} s "
          f"(seed {args.seed})")
    with tempfile.TemporaryDirectory() as tmp:
        dlib_workspace(Path(tmp) / "home", SEED)
        t = time.perf_counter()
        mine = ours(sets, Path(tmp) / "home")
        print(f"this project: {time.perf_counter() - t:.0f} s for all conditions (three variants)")
    rows = {v: table(f"this project, dlib-resnet + MTCNN, tta {v}", mine, v, people)
            for v in ("none", "flip", "equalise")}
    print("\nEER % by condition, tta none -> flip -> equalised chip")
    for name in mine:
        print(f"{name:<16}{100 * rows['none'][name]['eer']:>7.2f}{100 * rows['flip'][name]['eer']:>8.2f}"
              f"{100 * rows['equalise'][name]['eer']:>8.2f}")
    if not args.skip_peer:
        t = time.perf_counter()
        theirs = peer(sets)
        if theirs is not None:
            table(f"face_recognition (HOG + dlib), {time.perf_counter() - t:.0f} s", theirs, "none", people)
    quality_effect(mine, people, "flip")
    detector_sweep(sets)


if __name__ == "__main__":
    main()
