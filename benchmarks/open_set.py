"""Open set: does the model the README trains name strangers? Folds by identity on
the seed photos, answered through the code `verifier query` runs, the trained model
beside the untrained face network, in one run.

    python benchmarks/open_set.py [--folds 4] [--run N] [--seed 0] [--target-far 1e-4]
                                  [--detector D] [--keep-trained] [--list] [--skip-peer]

Each fold keeps a quarter of the 16 people out as strangers. Of every other person,
5 photos are the user's data (trained on, then embedded as the gallery, exactly as
`verifier pipeline --data DATA --backbone dlib-resnet` does) and 3 are probes the
model never saw. Probes: the held-out photos of gallery people and every photo of
the strangers, clean and degraded seven ways (`verifier.degrade`, as
`benchmarks/hard_photos.py`). Each probe's largest face is answered as
`verifier query` answers it (the calibrated threshold, the quality floor):

- strangers named: a stranger's face given a gallery person's name (the goal is 0);
- known named right / named wrong / left unknown: a gallery person's new photo;
- pair EERs: each probe against the clean probes of other photos (gallery
  people's new photos, and the strangers among themselves; a degraded copy is not
  scored against its own original), clean and degraded, pooled.

Printed per model (the README's defaults, and the untrained network: `--head none`)
for clean and degraded probes, and by quality band of the probe's face; and
face_recognition (HOG faces, the same dlib network, named at its 0.6 tolerance)
where it is installed (`--skip-peer` leaves it out).
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np  # noqa: E402
from common import SEED  # noqa: E402 - first: the import path, TensorFlow quiet

from verifier.defaults import DETECTORS  # noqa: E402

GALLERY_PHOTOS = 5
MODELS = {"trained (README defaults)": {},
          "untrained network": {"head": "none", "fine_tune": 0.0, "augment": "none"}}


def split_fold(people: np.ndarray, fold: int, folds: int, seed: int) -> tuple[list[int], list[int], list[int]]:
    """Photo indices: gallery (the user's data), probes of gallery people, strangers."""
    names = np.unique(people)
    rng = np.random.default_rng([seed, 1])
    order = names[rng.permutation(len(names))]
    strangers = set(np.array_split(order, folds)[fold].tolist())
    gallery, known, alien = [], [], []
    for name in names:
        photos = np.flatnonzero(people == name)
        if name in strangers:
            alien += photos.tolist()
            continue
        photos = np.random.default_rng([seed, fold, int(photos[0])]).permutation(photos)
        gallery += photos[:GALLERY_PHOTOS].tolist()
        known += photos[GALLERY_PHOTOS:].tolist()
    return gallery, known, alien


def answer_probes(home: Path, data: Path, options: dict, probes: list[tuple[str, bytes]],
                  target_far: float) -> list:
    """Train as the README does (with ``options`` changed), embed the gallery, and
    answer every probe as `verifier query` does; the answers in order."""
    from jobs.embed import embed_gallery
    from jobs.live import Verifier
    from jobs.train import TrainOptions, train
    from storage.database import open_database
    from storage.workspace import Workspace
    from verifier.errors import VerifierError

    ws = Workspace.open(home)
    sessions = open_database(ws.database_url)
    result = train(ws, TrainOptions(data=data, backbone="dlib-resnet", target_far=target_far,
                                    **options), quiet=True, echo=lambda s: None, database=sessions)
    embed_gallery(ws, sessions, data, model=result.name, quiet=True)
    verifier = Verifier.open(ws, sessions, result.name)
    answers = list(verifier.search_many(probes, k=1))
    vectors = []  # each probe's largest face's vector, for the pair EERs
    for name, data in probes:
        try:
            faces = verifier.prepare_faces(data, name, max_faces=1)
            vectors.append(verifier.embed(faces)[0])
        except VerifierError:
            vectors.append(None)
    return answers, result, vectors


def pair_eer(vectors: list, people: list, photos: list, clean: list[int],
             probes: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Distances and labels of each probe (by position) against every clean probe
    of another photo (``photos[n]``: the seed photo probe ``n`` was made from, so a
    degraded copy is never scored against its own original); photos without a face
    are left out."""
    d, y = [], []
    for a in probes:
        for b in clean:
            if photos[a] == photos[b] or vectors[a] is None or vectors[b] is None:
                continue
            d.append(float(np.linalg.norm(vectors[a] - vectors[b])))
            y.append(people[a] == people[b])
    return np.array(d), np.array(y)


PEER_TOLERANCE = 0.6


def peer_encodings(sets: dict[str, list[bytes]]) -> dict[str, list] | None:
    """face_recognition's encoding of each photo's largest face per condition
    (``None`` where it finds no face), or ``None`` when it is not installed."""
    try:
        import face_recognition
    except ImportError:
        print("face_recognition: not installed (pip install dlib-bin && pip install --no-deps "
              "face_recognition); skipped")
        return None
    import io

    out: dict[str, list] = {}
    for name, photos in sets.items():
        row = []
        for data in photos:
            image = face_recognition.load_image_file(io.BytesIO(data))
            boxes = face_recognition.face_locations(image)
            if not boxes:
                row.append(None)
                continue
            largest = max(boxes, key=lambda b: (b[2] - b[0]) * (b[1] - b[3]))
            row.append(face_recognition.face_encodings(image, [largest])[0])
        out[name] = row
    return out


class PeerAnswer:
    """face_recognition's answer in the shape :func:`outcome` reads."""

    def __init__(self, name: str | None) -> None:
        self.error, self.unknown, self.faces = None, name is None, []
        self.matches = [type("M", (), {"identity": name})()] if name else []


def peer_answers(encodings: dict[str, list], gallery: list[int], people: np.ndarray,
                 probes: list[tuple[str, int]]) -> list[PeerAnswer]:
    known = [(encodings["clean"][i], people[i]) for i in gallery if encodings["clean"][i] is not None]
    vectors = np.stack([v for v, _ in known])
    answers = []
    for condition, i in probes:
        probe = encodings[condition][i]
        if probe is None:
            answers.append(PeerAnswer(None))
            continue
        d = np.linalg.norm(vectors - probe, axis=1)
        best = int(d.argmin())
        answers.append(PeerAnswer(known[best][1] if d[best] <= PEER_TOLERANCE else None))
    return answers


def outcome(answer, truth: str | None) -> str:
    if answer.error or answer.unknown:
        return "unknown"
    named = answer.matches[0].identity
    if truth is None:
        return "stranger named"
    return "right" if named == truth else "wrong"


def count(rows: dict, key: tuple, answer, truth) -> None:
    """Tally one answer under ``key`` and whether its probe was a stranger."""
    cell = rows.setdefault(key + ("stranger" if truth is None else "known",), {})
    o = outcome(answer, truth)
    cell[o] = cell.get(o, 0) + 1


def list_probe(label: str, name: str, answer, truth: str | None, kind: str, quality: float | None) -> None:
    """``--list``: a probe named wrongly, or a clean photo of a gallery person left
    unknown (with why: its nearest match and distance, or its reason)."""
    o = outcome(answer, truth)
    m = answer.matches[0] if answer.matches else None
    if o in ("stranger named", "wrong"):
        print(f"  {label}: {name} ({truth or 'a stranger'}) named {m.identity} at "
              f"{m.distance:.4f}, quality {quality}")
    elif o == "unknown" and truth is not None and kind == "clean":
        why = answer.error or answer.reason or (f"nearest {m.identity} at {m.distance:.4f}" if m else "no match")
        print(f"  {label}: {name} ({truth}) left unknown: {why}, quality {quality}")


def run_fold(fold: int, args, sets: dict, paths: list, people: np.ndarray, encodings, target_far: float,
             tally: dict, eers: dict) -> None:
    """One fold: its probes answered by face_recognition and by each model, tallied."""
    from verifier.quality import band_of

    gallery, known, alien = split_fold(people, fold, args.folds, args.seed)
    probes, truths, kinds, where = [], [], [], []
    for condition, photos in sets.items():
        for i in known + alien:
            probes.append((f"{condition} {paths[i].name}", photos[i]))
            truths.append(people[i] if i in known else None)
            kinds.append("clean" if condition == "clean" else "degraded")
            where.append((condition, i))
    if encodings is not None:
        rows = tally.setdefault(f"face_recognition {PEER_TOLERANCE}", {})
        for a, truth, kind in zip(peer_answers(encodings, gallery, people, where), truths, kinds):
            count(rows, (kind, "all"), a, truth)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        for i in gallery:
            link = data / people[i] / paths[i].name
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(paths[i].resolve())
        for label, options in MODELS.items():
            t1 = time.perf_counter()
            if args.detector:
                options = {**options, "detector": args.detector}
            if args.keep_trained:
                options = {**options, "keep_trained": True}
            answers, result, vectors = answer_probes(Path(tmp) / label.split()[0], data, options,
                                                     probes, target_far)
            print(f"fold {fold}: {label}: threshold {result.threshold:.4f}, kept "
                  f"{result.selection.get('kept')}, {len(probes)} probes "
                  f"({time.perf_counter() - t1:.0f} s)")
            owner = [people[i] for _, i in where]
            for group, members in (("known", known), ("strangers", alien)):
                at = [n for n, (_, i) in enumerate(where) if i in members]
                cl = [n for n in at if where[n][0] == "clean"]
                for kind, probe in (("clean", cl), ("degraded", [n for n in at if n not in cl])):
                    dd, yy = pair_eer(vectors, owner, [i for _, i in where], cl, probe)
                    pooled = eers.setdefault((label, group, kind), [[], []])
                    pooled[0].append(dd)
                    pooled[1].append(yy)
            rows = tally.setdefault(label, {})
            for a, truth, kind, (name, _) in zip(answers, truths, kinds, probes):
                q = a.faces[0].quality.score if a.faces and a.faces[0].quality else None
                if args.list:
                    list_probe(label, name, a, truth, kind, q)
                for key in ((kind, "all"), (kind, band_of(q))):
                    count(rows, key, a, truth)


def print_tables(tally: dict, eers: dict) -> None:
    from verifier.metrics import eer

    print(f"\n{'model':<28}{'probes':<10}{'band':<16}{'strangers named':>18}{'known right':>14}"
          f"{'wrong':>7}{'unknown':>9}")
    for label, rows in tally.items():
        for kind in ("clean", "degraded"):
            bands = sorted({k[1] for k in rows if k[0] == kind}, key=lambda b: (b != "all", b))
            for band in bands:
                s = rows.get((kind, band, "stranger"), {})
                k = rows.get((kind, band, "known"), {})
                n_s, n_k = sum(s.values()), sum(k.values())
                print(f"{label:<28}{kind:<10}{band:<16}{s.get('stranger named', 0):>11} of {n_s:<4}"
                      f"{k.get('right', 0):>7} of {n_k:<4}{k.get('wrong', 0):>7}{k.get('unknown', 0):>9}")
    print("\npair EER (%), probes against the clean probes of other photos, pooled over folds")
    print(f"{'model':<28}{'known clean':>13}{'known degraded':>16}{'strangers clean':>17}"
          f"{'strangers degraded':>20}")
    for label in MODELS:
        cells = [eer(np.concatenate(eers[(label, g, k)][0]), np.concatenate(eers[(label, g, k)][1])) * 100
                 for g in ("known", "strangers") for k in ("clean", "degraded")]
        print(f"{label:<28}" + "".join(f"{c:>{w}.3f}" for c, w in zip(cells, (13, 16, 17, 20))))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=SEED)
    ap.add_argument("--folds", type=int, default=4, help="people split into this many groups of strangers")
    ap.add_argument("--run", type=int, help="run only the first RUN folds [default: all]")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--target-far", type=float, default=None,
                    help="[default: the project's TARGET_FAR]")
    ap.add_argument("--skip-peer", action="store_true", help="leave face_recognition out")
    ap.add_argument("--list", action="store_true",
                    help="print every probe named wrongly, and clean photos of gallery people left unknown")
    ap.add_argument("--detector", choices=DETECTORS, help="train with this detector [default: the default]")
    ap.add_argument("--keep-trained", action="store_true",
                    help="keep the trained model on every fold (`verifier train --keep-trained`), "
                         "to see what the selection against the starting network guards")
    args = ap.parse_args()
    from benchmarks.hard_photos import degraded_sets
    from verifier.defaults import TARGET_FAR
    from verifier.images import scan_dataset

    target_far = args.target_far or TARGET_FAR
    dataset = scan_dataset(args.data)
    paths = [p.path for p in dataset.photos]
    people = np.array([p.identity for p in dataset.photos])
    t0 = time.perf_counter()
    sets = degraded_sets(paths, args.seed)
    print(f"{len(paths)} photos of {len(set(people))} people, {len(sets) - 1} degradations "
          f"({time.perf_counter() - t0:.0f} s); target FAR {target_far:g}; {args.folds} folds")
    encodings = None if args.skip_peer else peer_encodings(sets)
    tally: dict[str, dict] = {}
    eers: dict[tuple, list] = {}
    for fold in range(args.run or args.folds):
        run_fold(fold, args, sets, paths, people, encodings, target_far, tally, eers)
    print_tables(tally, eers)


if __name__ == "__main__":
    main()
