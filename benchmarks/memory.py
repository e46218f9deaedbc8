"""Peak resident memory of `verifier embed`, `verifier query FOLDER` and `verifier
evaluate --pairs` on 1,000 against 20,000 small synthetic photos, each in a fresh
process, side by side (the vectors themselves are 64 floats a photo here; evaluate
scores two pairs per photo, one same-person and one different-person).

    python benchmarks/memory.py [--small 1000 --large 20000]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT  # noqa: E402 - first: the import path, TensorFlow quiet

sys.path.insert(0, str(ROOT))

CHILD = """
import resource, sys, json
from click.testing import CliRunner
from jobs.cli import main
r = CliRunner().invoke(main, sys.argv[1:], catch_exceptions=False)
print(json.dumps({"exit": r.exit_code, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def peak(*args: str) -> tuple[float, float]:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", CHILD, *args], cwd=ROOT, env=env, check=True,
                         capture_output=True, text=True).stdout.strip().splitlines()[-1]
    doc = json.loads(out)
    assert doc["exit"] in (0, 1), doc
    return doc["peak_mb"], time.perf_counter() - t


def write_pairs(data: Path, out: Path) -> Path:
    """Two pairs per photo: with the next photo of the same person, and with the photo
    at the same place in the next person's folder."""
    people = sorted(p for p in data.iterdir() if p.is_dir())
    photos = [sorted(f.name for f in person.iterdir()) for person in people]
    lines = ["a,b,label"]
    for k, (person, names) in enumerate(zip(people, photos)):
        other, other_names = people[(k + 1) % len(people)], photos[(k + 1) % len(people)]
        for i, name in enumerate(names):
            lines.append(f"{person.name}/{name},{person.name}/{names[(i + 1) % len(names)]},1")
            lines.append(f"{person.name}/{name},{other.name}/{other_names[i % len(other_names)]},0")
    out.write_text("\n".join(lines) + "\n")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--small", type=int, default=1000)
    ap.add_argument("--large", type=int, default=20000)
    args = ap.parse_args()
    from jobs.train import TrainOptions, train
    from storage.workspace import Workspace
    from verifier.synthetic import write_identity_set

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        seed = write_identity_set(tmp / "train", identities=4, per_identity=4, size=64)
        train(Workspace.open(tmp / "model"), TrainOptions(data=seed, backbone="tiny", detector="none",
                                                         epochs=1, name="tiny"),
              quiet=True, echo=lambda s: None)
        rows = {}
        for n in (args.small, args.large):
            data = write_identity_set(tmp / f"g{n}", identities=50, per_identity=n // 50, size=64)
            home = tmp / f"h{n}"
            import shutil

            shutil.copytree(tmp / "model" / "models", home / "models")
            rows[n] = {
                "embed": peak("--home", str(home), "-q", "embed", "--data", str(data)),
                "query FOLDER": peak("--home", str(home), "-q", "query", str(data), "-k", "1",
                                     "--csv", str(tmp / f"q{n}.csv")),
                "evaluate": peak("--home", str(home), "-q", "evaluate", "--pairs",
                                 str(write_pairs(data, tmp / f"pairs{n}.csv")), "--data", str(data)),
            }
        for step in ("embed", "query FOLDER", "evaluate"):
            (a, ta), (b, tb) = rows[args.small][step], rows[args.large][step]
            vectors_mb = (args.large - args.small) * 64 * 4 / 2 ** 20
            print(f"{step:<13} peak RSS {args.small:>6} photos: {a:7.0f} MB ({ta:5.1f} s)   "
                  f"{args.large:>6} photos: {b:7.0f} MB ({tb:5.1f} s)   RATIO {b / a:.2f} "
                  f"(the extra vectors: {vectors_mb:.1f} MB)")


if __name__ == "__main__":
    main()
