"""`verifier embed` through the local engine and through Ray (1 and 2 workers) on
the same photos, side by side: photos per second, Ray's overhead, and the agreement
of the vectors.

    python benchmarks/embed_engines.py [--synthetic 1000]

Each run is a fresh `verifier embed` process on a fresh workspace copy and face cache
(the model already trained), timed end to end as a user sees it: the seed photos with
dlib-resnet (MTCNN faces); plus, with --synthetic N, N small synthetic
photos with the `tiny` network (no detector), where per-photo overhead shows most.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np  # noqa: E402
from common import ROOT, SEED  # noqa: E402 - first: the import path, TensorFlow quiet


def vectors(sessions) -> dict[str, np.ndarray]:
    from sqlalchemy import select

    from storage.schema import Embedding, Image

    with sessions() as s:
        rows = s.execute(select(Image.path, Embedding.vector).join(Embedding, Embedding.image_id == Image.id)).all()
    return {p: np.frombuffer(v, np.float32) for p, v in rows}


def seed_copies(source: Path, dest: Path, copies: int) -> Path:
    """``copies`` re-encoded JPEG copies of every PNG under ``source``, one folder per
    person under ``dest``: new bytes (no face-cache hit), the same faces."""
    from PIL import Image

    for k in range(copies):
        for photo in sorted(source.rglob("*.png")):
            out = dest / photo.parent.name / f"{photo.stem}-{k}.jpg"
            out.parent.mkdir(parents=True, exist_ok=True)
            # a comment makes every copy's bytes new, with the same pixels
            Image.open(photo).convert("RGB").save(out, quality=95 - k % 10, comment=f"copy {k}")
    return dest


def run(base: Path, data: Path, model: str, engine: str, workers: int | None):
    """One `verifier embed` in a fresh process and workspace, as a user runs it: wall
    time (interpreter, imports, Ray's and the model's start-up included), the JSON
    summary, what it wrote on stderr besides its progress bar, and the stored vectors."""
    from storage.database import open_database
    from storage.workspace import Workspace

    home = Path(tempfile.mkdtemp(dir=base))
    shutil.copytree(base / "trained" / "models", home / "models")
    command = [sys.executable, "-m", "jobs", "embed", "--home", str(home), "--data", str(data),
               "--model", model, "--engine", engine, "--json"]
    command += ["--workers", str(workers)] if workers else []
    t = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    seconds = time.perf_counter() - t
    if done.returncode:
        sys.exit(f"{' '.join(command)} failed:\n{done.stderr}")
    sessions = open_database(Workspace.open(home).database_url)
    noise = [line for line in done.stderr.replace("\r", "\n").splitlines()
             if line.strip() and "%|" not in line]  # anything but the progress bar
    return seconds, json.loads(done.stdout), noise, vectors(sessions)


def compare(label: str, base: Path, data: Path, model: str) -> None:
    results = {}
    for engine, workers in (("local", None), ("ray", 1), ("ray", 2)):
        seconds, summary, noise, vecs = run(base, data, model, engine, workers)
        results[(engine, workers)] = (seconds, vecs)
        n = summary["added"]
        name = engine + (f", {workers} worker{'s' if workers > 1 else ''}" if workers else "")
        print(f"{label}: {name:<16} {n / seconds:7.1f} photos/s ({seconds:.1f} s for {n}, a fresh "
              f"`verifier embed` process; {len(noise)} lines on stderr besides the progress bar)")
    local_s, local_v = results[("local", None)]
    for key in (("ray", 1), ("ray", 2)):
        s, v = results[key]
        diff = max(float(np.abs(v[p] - local_v[p]).max()) for p in local_v)
        print(f"{label}: ray {key[1]} worker(s) / local time = {s / local_s:.2f}x; largest "
              f"vector difference {diff:.1e}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=SEED)
    ap.add_argument("--synthetic", type=int, default=1000)
    ap.add_argument("--copies", type=int, default=1,
                    help="re-encoded copies of the seed set (new bytes, same faces), so that "
                         "Ray's start-up is spread over more photos")
    args = ap.parse_args()
    from jobs.train import TrainOptions, train
    from storage.workspace import Workspace
    from verifier.synthetic import write_identity_set

    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        ws = Workspace.open(base / "trained")
        train(ws, TrainOptions(data=args.data, backbone="dlib-resnet", head="none", fine_tune=0.0,
                               name="dlib"), quiet=True, echo=lambda s: None)
        shutil.rmtree(ws.cache_dir / "faces", ignore_errors=True)
        data = args.data
        if args.copies > 1:
            data = seed_copies(args.data, base / "copies", args.copies)
        compare(f"{args.copies} x seed photos, dlib-resnet + MTCNN", base, data, "dlib")
        if args.synthetic:
            per = max(1, args.synthetic // 20)
            synth = write_identity_set(base / "synth", identities=20, per_identity=per, size=64)
            train(ws, TrainOptions(data=synth, backbone="tiny", detector="none", epochs=1,
                                   name="tiny"), quiet=True, echo=lambda s: None)
            compare(f"{20 * per} synthetic photos, tiny", base, synth, "tiny")


if __name__ == "__main__":
    main()
