"""The detectors' settings side by side, on the seed photos, their seven
degradations and face-free images, in one run: what each costs and what it misses.

    python benchmarks/detector_settings.py

For each MTCNN setting (the smallest face searched, the pyramid's scale factor, PNet's
and ONet's thresholds) and each YuNet setting (its score threshold, its levels):
faces found on the 128 seed photos and on their 896 degraded
copies (`benchmarks/hard_photos.py`'s, seeded), extra faces (a seed photo shows one
person), false faces on the face-free images of `benchmarks/faces_speed.py`, and
milliseconds per seed photo. A setting may replace the package's only where it finds
at least as many faces with no more false ones (`--detector mtcnn-30px`, the
default `mtcnn-fast`, and `yunet` at 0.8 with its half-size levels came from this
table).
"""
from __future__ import annotations

import time

import common  # noqa: E402,F401 - first: the import path, TensorFlow quiet

from verifier.defaults import DETECTOR_SETTINGS  # noqa: E402

SETTINGS = {
    "package (20 px)": {},
    "30 px": {"min_face_size": 30},
    "40 px": {"min_face_size": 40},
    "30 px, scale 0.6": {"min_face_size": 30, "scale_factor": 0.6},
    "30 px, PNet 0.7": {"min_face_size": 30, "threshold_pnet": 0.7},
    "30 px, ONet 0.85": {"min_face_size": 30, "threshold_onet": 0.85},
    "30 px, final NMS 0.5": {"min_face_size": 30, "nms_onet": 0.5},
    "30 px, final NMS 0.5, ONet 0.75": {"min_face_size": 30, "nms_onet": 0.5, "threshold_onet": 0.75},
    "28.2 px (the package's levels but the finest), NMS 0.5 (mtcnn-fast)": DETECTOR_SETTINGS["mtcnn-fast"],
    "Pillow, 20 px": {"pyramid": "pillow"},
    "Pillow, 30 px": {"min_face_size": 30, "pyramid": "pillow"},
    "Pillow, 30 px, 2 ONet passes": {"min_face_size": 30, "pyramid": "pillow", "onet_passes": 2},
}


YUNET = {
    "YuNet 0.9 (OpenCV's demo)": {"threshold": 0.9},
    "YuNet 0.8, half-size levels over 320 px (yunet)": {},
    "YuNet 0.8, the photo's size only": {"level_side": 1 << 30},
    "YuNet 0.7": {"threshold": 0.7},
}


def detectors() -> dict:
    """Each setting's detector: the confidences of the faces it finds in an image."""
    from verifier.faces import YuNetDetector
    from verifier.mtcnn_pipeline import MTCNNPipeline

    pipe = MTCNNPipeline.cached()
    out = {label: (lambda image, o=options: [f["confidence"] for f in pipe.detect(image, **o)])
           for label, options in SETTINGS.items()}
    for label, options in YUNET.items():
        out[label] = lambda image, d=YuNetDetector(**options): [f.confidence for f in d.detect(image)]
    return out


def main() -> None:
    from benchmarks.faces_speed import SEED, face_free
    from benchmarks.hard_photos import degraded_sets
    from verifier.images import decode_image

    paths = sorted(SEED.rglob("*.png"))
    decoded = {name: [decode_image(data) for data in photos]
               for name, photos in degraded_sets(paths, 0).items()}
    free = face_free(paths)
    print(f"{'setting':<70}{'seed':>9}{'extra':>7}{'degraded':>10}{'extra':>7}{'false faces':>13}"
          f"{'ms/seed photo':>15}{'least sure seed face':>22}")
    for label, detect in detectors().items():
        found = extra = 0
        for name, images in decoded.items():
            t = time.perf_counter()
            faces = [detect(image) for image in images]
            if name == "clean":
                ms = (time.perf_counter() - t) / len(images) * 1000
                seed_found, seed_extra = sum(bool(f) for f in faces), sum(max(0, len(f) - 1) for f in faces)
                surest = [max(f) for f in faces if f]
                unsure = min(surest) if surest else float("nan")
            else:
                found += sum(bool(f) for f in faces)
                extra += sum(max(0, len(f) - 1) for f in faces)
        false = sum(len(detect(image)) for image in free)
        print(f"{label:<70}{seed_found:>5}/{len(paths)}{seed_extra:>7}{found:>6}/{len(paths) * 7}{extra:>7}"
              f"{false:>13}{ms:>15.1f}{unsure:>22.3f}")


if __name__ == "__main__":
    main()
