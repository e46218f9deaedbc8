"""Where MTCNN's time goes, and what each extra face costs it, in one run, for
the default detector, `mtcnn-fast`, and the package's settings (`mtcnn`); `yunet` is
one network pass (`benchmarks/faces_speed.py` and `group_photos.py` time it).

    python benchmarks/detector_stages.py [--rounds 5]

A 950x260 photo of four 200 px slots holding 1 or 4 seed faces (the other slots
blank, so the pixels are the same), and the seed photos themselves: milliseconds
per detection in each stage (area resize, PNet, suppression, crop-and-resize, RNet,
ONet, the rest), with the networks' sessions on one thread (what every path uses)
and on two, rounds alternating between them. The per-face cost is (4 faces - 1
face) / 3.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np  # noqa: E402
from common import SEED  # noqa: E402 - first: the import path, TensorFlow quiet

from verifier.defaults import DETECTOR_SETTINGS  # noqa: E402

PEOPLE = ("obama", "messi", "meryl_streep", "mbappe")
STAGES = ("resize", "pnet", "suppress", "crop", "rnet", "onet")


class Timed:
    """A session or function whose calls add their seconds to ``spent[name]``."""

    def __init__(self, inner, name: str, spent: dict) -> None:
        self.inner, self.name, self.spent = inner, name, spent

    def _time(self, call, *a, **k):
        t = time.perf_counter()
        try:
            return call(*a, **k)
        finally:
            self.spent[self.name] = self.spent.get(self.name, 0.0) + time.perf_counter() - t

    def run(self, *a, **k):
        return self._time(self.inner.run, *a, **k)

    def __call__(self, *a, **k):
        return self._time(self.inner, *a, **k)


def measure(pipes: dict, detectors: dict, photos: dict, rounds: int, spent: dict) -> dict:
    """Milliseconds per detection by stage, for every (detector, threads, photo set),
    one row per round; rounds alternate between them."""
    results: dict[tuple[str, int, str], list[dict]] = {}
    for _ in range(rounds):
        for detector, settings in detectors.items():
            for threads, pipe in pipes.items():
                for label, images in photos.items():
                    spent.clear()
                    t = time.perf_counter()
                    for image in images:
                        pipe.detect(image, **settings)
                    total = time.perf_counter() - t
                    row = {k: v / len(images) * 1000 for k, v in spent.items()}
                    row["rest"] = (total - sum(spent.values())) / len(images) * 1000
                    row["total"] = total / len(images) * 1000
                    results.setdefault((detector, threads, label), []).append(row)
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    from PIL import Image

    import verifier.mtcnn_pipeline as mp
    from verifier.images import decode_image
    from verifier.synthetic import compose_group

    spent: dict[str, float] = {}
    for name in ("resize_area", "crop_and_resize", "suppress"):
        label = {"resize_area": "resize", "crop_and_resize": "crop"}.get(name, name)
        setattr(mp, name, Timed(getattr(mp, name), label, spent))
    with tempfile.TemporaryDirectory() as tmp:
        blank = Path(tmp) / "blank.png"
        Image.new("RGB", (200, 200), (90, 90, 90)).save(blank)
        photos = {}
        for n in (1, 4):
            chosen = [sorted((SEED / p).iterdir())[6] for p in PEOPLE[:n]] + [blank] * (4 - n)
            photos[f"{n} face{'s' if n > 1 else ''}"] = [decode_image(compose_group(chosen, [200] * 4)[0])]
        photos["seed photos"] = [decode_image(p.read_bytes()) for p in sorted(SEED.rglob("*.png"))[::4]]
    pipes = {}
    for threads in (1, 2):
        pipe = mp.MTCNNPipeline.cached(threads=threads)
        pipe._pnet, pipe._rnet, pipe._onet = (Timed(s, n, spent) for s, n in
                                              ((pipe._pnet, "pnet"), (pipe._rnet, "rnet"),
                                               (pipe._onet, "onet")))
        pipes[threads] = pipe
    detectors = {name: DETECTOR_SETTINGS[name] for name in ("mtcnn-fast", "mtcnn")}
    for pipe in pipes.values():
        for settings in detectors.values():
            for images in photos.values():
                pipe.detect(images[0], **settings)
    results = measure(pipes, detectors, photos, args.rounds, spent)
    columns = (*STAGES, "rest", "total")
    print(f"{'ms per detection (median of rounds)':<40}" + "".join(f"{c:>9}" for c in columns))
    median = {}
    for key, rows in results.items():
        median[key] = {c: float(np.median([r.get(c, 0.0) for r in rows])) for c in columns}
        detector, threads, label = key
        print(f"{f'{detector}, {threads} thread(s), {label}':<40}"
              + "".join(f"{median[key][c]:9.1f}" for c in columns))
    for detector in detectors:
        for threads in pipes:
            one, four = median[detector, threads, "1 face"], median[detector, threads, "4 faces"]
            per = {c: (four[c] - one[c]) / 3 for c in columns}
            print(f"{detector}, {threads} thread(s): each extra face adds {per['total']:.1f} ms ("
                  + ", ".join(f"{c} {per[c]:+.1f}" for c in columns[:-1]) + ")")


if __name__ == "__main__":
    main()
