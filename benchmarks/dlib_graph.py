"""What the fix of issue 9 costs: dlib-resnet forward throughput with the new graph
(``padding="same"``, no ``Pad -> Conv2D``) against the old graph (explicit
``ZeroPadding2D``), and against the other possible fix (oneDNN off for the process).

    python benchmarks/dlib_graph.py

Each variant runs in a fresh process (the old graph with oneDNN on may crash; such a
run is retried and counted). Same chips, same batch size; best of --repeat passes.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

from common import ROOT  # noqa: E402 - first: the import path, TensorFlow quiet

CHILD = """
import json, sys, time, tempfile
import numpy as np
from verifier.dlib_format import read_network_file
from verifier.dlib_resnet import build_from_network, packaged_weights
from verifier.layers import Preprocess
from verifier.network import inference_function
import keras
explicit, batch, repeat, n = {explicit}, {batch}, {repeat}, {n}
net = read_network_file(packaged_weights())
base = build_from_network(net, explicit_padding=explicit)
pixels = keras.Input((150, 150, 3))
model = keras.Model(pixels, base(Preprocess("dlib")(pixels)))
run = inference_function(model)
x = np.random.default_rng(0).uniform(0, 255, (n, 150, 150, 3)).astype(np.float32)
first = run(x[:batch])
best = float("inf")
for _ in range(repeat):
    t = time.perf_counter()
    for i in range(0, n, batch):
        run(x[i:i + batch])
    best = min(best, time.perf_counter() - t)
print(json.dumps({{"photos_per_s": n / best, "first": first[:4].ravel().tolist()}}))
"""


def measure(explicit: bool, onednn: bool, args) -> tuple[dict, int]:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "TF_ENABLE_ONEDNN_OPTS": "1" if onednn else "0"}
    code = CHILD.format(explicit=explicit, batch=args.batch_size, repeat=args.repeat, n=args.photos)
    crashes = 0
    for _ in range(5):
        done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=900)
        if done.returncode == 0:
            return json.loads(done.stdout.strip().splitlines()[-1]), crashes
        crashes += 1
        print(f"  (a run died with exit {done.returncode}; retrying)", file=sys.stderr)
    raise SystemExit("five runs in a row died")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    variants = [("new graph, oneDNN on (the fix)", False, True),
                ("old graph, oneDNN on (before)", True, True),
                ("old graph, oneDNN off (env-var fix)", True, False)]
    results = {}
    for label, explicit, onednn in variants:
        results[label], crashes = measure(explicit, onednn, args)
        print(f"{label:<38} {results[label]['photos_per_s']:7.1f} photos/s"
              + (f"  ({crashes} crashed runs before this one)" if crashes else ""), flush=True)
    new, old, off = (results[v[0]]["photos_per_s"] for v in variants)
    print(f"RATIO new / before throughput = {new / old:.3f}; env-var fix / before = {off / old:.3f}")
    import numpy as np

    ref = np.array(results[variants[0][0]]["first"])
    diff = max(float(np.abs(np.array(r["first"]) - ref).max()) for r in results.values())
    print(f"largest difference of the descriptors across variants: {diff:.2e}")


if __name__ == "__main__":
    main()
