"""The photos the README's examples use, made from the seed photos (seeded, so
every run writes the same files):

    python benchmarks/example_photos.py --to examples

- ``group.png``: three seed photos side by side (meryl_streep, obama, lula; largest
  first), ``pair.png``: two (meryl_streep, obama);
- ``obama.jpg``, ``lula1.jpg``, ``lula2.jpg``, ``lula3.jpg``: seed photos saved as
  JPEG (new bytes, so the gallery sees new photos);
- ``unsorted/``: a flat folder of photos under numbered names, as a phone leaves
  them: six photos of meryl_streep and two of each of four other people, as JPEG,
  in a shuffled order;
- ``more/``: photos that arrive later: her other two, and one more of obama and of
  messi.

Files already there are written again (the same bytes).
"""
from __future__ import annotations

import argparse
import io
from pathlib import Path

import numpy as np
from common import SEED  # noqa: E402 - first: the import path, TensorFlow quiet
from PIL import Image

from verifier.synthetic import compose_group

NEWCOMER = "meryl_streep"
"""The person of the examples who is not in the gallery at first."""
OTHERS = ("elon_musk", "messi", "priyanka_chopra", "obama")


def jpeg(photo: Path) -> bytes:
    buf = io.BytesIO()
    Image.open(photo).convert("RGB").save(buf, "JPEG", quality=92)
    return buf.getvalue()


def write_examples(seed: Path, to: Path, rng_seed: int = 0) -> list[Path]:
    """Write the example photos under ``to``; returns the paths written."""
    photos = {p.name: sorted(p.iterdir()) for p in sorted(seed.iterdir()) if p.is_dir()}
    missing = [name for name in (NEWCOMER, *OTHERS, "lula") if name not in photos]
    if missing:
        raise SystemExit(f"{seed} lacks the seed people {', '.join(missing)}")
    to.mkdir(parents=True, exist_ok=True)
    files: dict[Path, bytes] = {
        to / "group.png": compose_group([photos[NEWCOMER][-1], photos["obama"][-1], photos["lula"][-1]],
                                        [300, 260, 180])[0],
        to / "pair.png": compose_group([photos[NEWCOMER][-2], photos["obama"][-2]], [300, 200])[0],
        to / "obama.jpg": jpeg(photos["obama"][1]),
    }
    for n in range(3):
        files[to / f"lula{n + 1}.jpg"] = jpeg(photos["lula"][1 + n])
    rng = np.random.default_rng(rng_seed)
    unsorted = photos[NEWCOMER][:6] + [p for name in OTHERS[:4] for p in photos[name][2:4]]
    more = photos[NEWCOMER][6:] + [photos["obama"][4], photos["messi"][4]]
    for folder, chosen, first in (("unsorted", unsorted, 1001), ("more", more, 2001)):
        (to / folder).mkdir(exist_ok=True)
        for number, i in enumerate(rng.permutation(len(chosen))):
            files[to / folder / f"IMG_{first + number}.jpg"] = jpeg(chosen[i])
    for path, data in files.items():
        path.write_bytes(data)
    return sorted(files)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=SEED, help="the seed photos [%(default)s]")
    ap.add_argument("--to", type=Path, default=Path("examples"))
    args = ap.parse_args()
    if not args.data.is_dir():
        raise SystemExit(f"no seed photos at {args.data}: pass --data (or fetch them with "
                         "`verifier datasets fetch seed-faces`)")
    written = write_examples(args.data, args.to)
    count = {folder: sum(p.parent.name == folder for p in written) for folder in ("unsorted", "more")}
    print(f"{len(written)} example photos in {args.to}: group.png, pair.png, obama.jpg, "
          f"lula1-3.jpg, unsorted/ ({count['unsorted']} photos), more/ ({count['more']} photos)")


if __name__ == "__main__":
    main()
