"""Build an LFW-format benchmark from the seed photos: a copy laid out as LFW is
(``NAME/NAME_000n.jpg``) and a ``pairs.txt`` of 10 folds, each with 30 same-person
and 30 different-person pairs (seeded; unlike LFW's, folds are not person-disjoint:
16 people are too few).

    python benchmarks/seed_pairs.py --to /tmp/seed-lfw
    verifier evaluate --pairs /tmp/seed-lfw/pairs.txt --data /tmp/seed-lfw/faces
"""
from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np
from common import SEED  # noqa: E402 - first: the import path, TensorFlow quiet
from PIL import Image


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=SEED)
    ap.add_argument("--to", type=Path, required=True)
    ap.add_argument("--folds", type=int, default=10)
    ap.add_argument("--per-fold", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    people = {}
    for person in sorted(p for p in args.data.iterdir() if p.is_dir()):
        photos = sorted(person.iterdir())
        (args.to / "faces" / person.name).mkdir(parents=True, exist_ok=True)
        for n, photo in enumerate(photos, 1):
            Image.open(photo).convert("RGB").save(
                args.to / "faces" / person.name / f"{person.name}_{n:04d}.jpg", quality=95)
        people[person.name] = len(photos)
    names = sorted(people)
    same = [(p, a, b) for p in names for a, b in itertools.combinations(range(1, people[p] + 1), 2)]
    rng.shuffle(same)
    need = args.folds * args.per_fold
    lines = [f"{args.folds}\t{args.per_fold}"]
    used = set()
    for fold in range(args.folds):
        for p, a, b in same[fold * args.per_fold:(fold + 1) * args.per_fold]:
            lines.append(f"{p}\t{a}\t{b}")
        k = 0
        while k < args.per_fold:
            p, q = rng.choice(len(names), 2, replace=False)
            a, b = int(rng.integers(1, people[names[p]] + 1)), int(rng.integers(1, people[names[q]] + 1))
            key = tuple(sorted([(names[p], a), (names[q], b)]))
            if key in used:
                continue
            used.add(key)
            lines.append(f"{names[p]}\t{a}\t{names[q]}\t{b}")
            k += 1
    assert len(same) >= need, "not enough same-person pairs"
    (args.to / "pairs.txt").write_text("\n".join(lines) + "\n")
    print(f"{sum(people.values())} photos of {len(names)} people in {args.to / 'faces'}; "
          f"{args.to / 'pairs.txt'}: {args.folds} folds x ({args.per_fold} same + {args.per_fold} different)")


if __name__ == "__main__":
    main()
