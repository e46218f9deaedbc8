"""ONNX Runtime against TensorFlow (Keras) for inference, side by side in one run:
fresh-process `verifier query` and `verifier embed`, a loaded `verifier serve`'s
memory, and the branch's forward throughput.

    python benchmarks/inference_engines.py [--searches 500] [--repeat 3]

The dlib-resnet model (MTCNN faces) over the seed photos; `VERIFIER_ENGINE=keras`
selects the TensorFlow path in the same code. Wall times are medians of --repeat
fresh processes, alternating engines; peak RSS is the largest of the process (its
own ``ru_maxrss``). Ray against local embedding: `benchmarks/embed_engines.py`.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import common  # noqa: E402,F401 - first: the import path, TensorFlow quiet
import numpy as np  # noqa: E402
import serve_load as sl  # noqa: E402

ENGINES = ("keras", "onnx")


def fresh(home: Path, engine: str, *args: str) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one `verifier` process."""
    env = dict(os.environ, VERIFIER_ENGINE=engine)
    # as a user's install runs: Python keeps the compiled modules (a sandbox that sets
    # PYTHONDONTWRITEBYTECODE would compile the project's modules in every process)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    t = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "jobs", "--home", str(home), "-q", *args],
                            cwd=sl.ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"{args}: exit {proc.returncode}: {proc.stderr.read().decode()[-2000:]}")
    return wall, usage.ru_maxrss / 1024


def side_by_side(label: str, home: Path, repeat: int, *args: str) -> dict:
    runs: dict[str, list[tuple[float, float]]] = {e: [] for e in ENGINES}
    fresh(home, "onnx", *args)  # file caches warm for both
    for _ in range(repeat):
        for engine in ENGINES:
            runs[engine].append(fresh(home, engine, *args))
    out = {e: (float(np.median([w for w, _ in r])), max(m for _, m in r)) for e, r in runs.items()}
    (kw, km), (ow, om) = out["keras"], out["onnx"]
    print(f"{label:<44} TensorFlow {kw:5.2f} s {km:5.0f} MB | ONNX Runtime {ow:5.2f} s {om:5.0f} MB"
          f" -> {kw / ow:4.1f}x faster, {km / om:4.1f}x less memory", flush=True)
    return out


def folder_of(n: int, photos: list[Path], root: Path) -> Path:
    """``n`` distinct photos (the seed photos re-encoded), one folder per person."""
    from PIL import Image

    for k in range(n):
        src = photos[k % len(photos)]
        dst = root / src.parent.name / f"{src.stem}-{k // len(photos)}.jpg"
        dst.parent.mkdir(parents=True, exist_ok=True)
        Image.open(src).convert("RGB").save(dst, "JPEG", quality=95 - k // len(photos))
    return root


def forward(label: str, keras_model, onnx_path: Path, side: int, batch: int = 32, rounds: int = 5) -> None:
    """Inputs per second of each engine, rounds alternating between them (the
    machine's speed drifts), median round."""
    from verifier.network import inference_function
    from verifier.onnx_branch import Branch

    x = np.random.default_rng(0).uniform(0, 255, (batch, side, side, 3)).astype(np.float32)
    runs = {"keras": inference_function(keras_model), "onnx": Branch(onnx_path, os.cpu_count() or 1)}
    times: dict[str, list[float]] = {engine: [] for engine in runs}
    for run in runs.values():
        run(x)
    for _ in range(rounds):
        for engine, run in runs.items():
            t = time.perf_counter()
            run(x)
            times[engine].append(time.perf_counter() - t)
    speed = {engine: batch / float(np.median(t)) for engine, t in times.items()}
    print(f"{label:<44} TensorFlow {speed['keras']:6.1f} | ONNX Runtime {speed['onnx']:6.1f} inputs/s"
          f" -> {speed['onnx'] / speed['keras']:4.2f}x (median of {rounds} alternating rounds)", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=sl.SEED)
    ap.add_argument("--searches", type=int, default=500)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--folder", type=int, default=750)
    args = ap.parse_args()
    photos = sorted(args.data.rglob("*.png"))
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        key = sl.dlib_workspace(home, args.data)
        side_by_side("verifier query one.jpg -k 1 (fresh process)", home, args.repeat,
                     "query", str(photos[0]), "-k", "1")
        big = folder_of(args.folder, photos, Path(tmp) / "big")
        sl.verifier(home, "embed", "--data", str(big))
        side_by_side(f"verifier embed, unchanged {args.folder}-photo folder", home, args.repeat,
                     "embed", "--data", str(big))

        for engine in ENGINES:
            os.environ["VERIFIER_ENGINE"] = engine
            try:
                proc, base = sl.start(home)
            finally:
                os.environ.pop("VERIFIER_ENGINE")
            try:
                start = sl.rss_mb(proc.pid)
                make = sl.variants(photos[::8]).__next__
                t = time.perf_counter()
                _, statuses, _ = sl.hammer(base, key, 8, args.searches, make)
                assert set(statuses) == {200}, statuses
                print(f"verifier serve, {engine:<6} RSS at start {start:5.0f} MB, after {args.searches} "
                      f"searches with 8 clients {sl.rss_mb(proc.pid):5.0f} MB "
                      f"({args.searches / (time.perf_counter() - t):.1f} searches/s)", flush=True)
            finally:
                proc.terminate()
                proc.wait(60)

        from jobs.models import _keras_branch
        from storage.workspace import Workspace
        from verifier.network import build_branch
        from verifier.onnx_branch import export_branch

        ws = Workspace.open(home)
        forward("dlib-resnet forward, batch 32", _keras_branch(ws, "m"),
                ws.model_dir("m") / "branch.onnx", 150)
        vgg = build_branch("vgg19", weights="none", image_size=224).model
        path = export_branch(vgg, Path(tmp) / "vgg19.onnx")
        forward("vgg19 (224 px, dense head) forward, batch 32", vgg, path, 224)
        shutil.rmtree(big)


if __name__ == "__main__":
    main()
