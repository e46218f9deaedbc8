"""How well and how fast `verifier cluster` groups faces, side by side in one run.

    python benchmarks/cluster_quality.py [--sizes 10000,100000,1000000] [--skip-seed]

1. Seed photos: a dlib-resnet workspace (MTCNN faces) over the 16 seed people,
   threshold calibrated by `verifier evaluate` on the validation split; then the 128
   photos copied into one folder under numbered names and put through
   `verifier cluster` (what users run). BCubed precision/recall/F against the true
   people, for that run and, on the same vectors: this project's Chinese whispers
   (closeness weights, best of 5 by modularity) over seeds 0-19 and thresholds
   around the calibrated one, a single plain (unweighted) Chinese whispers run,
   dlib's own `chinese_whispers_clustering` (where dlib is installed), connected
   components (single linkage), the baseline every method must beat, and the
   incremental rule (`verifier.assignment`: replayed, in random batches, at other
   centre factors). Then the photos arriving in two folders (two runs, the second
   continuing the first) against one `--regroup` run of both.
2. Seeded synthetic mixtures (`verifier.synthetic.identity_mixture`, 128-d, dlib's
   scale: same person ~0.4 apart, threshold 0.6), 300 people with 1-20 photos each,
   at two spreads and with look-alike pairs of people (centres 0.5 and 0.4
   apart, where single linkage chains two people together): the same methods.
3. The look-alike check (`verifier gallery check`) on the same kind of mixtures with
   look-alike pairs planted: planted pairs listed, other pairs listed.
4. A stream of 100,000 synthetic faces given to the incremental rule 1,000 at a
   time: seconds per batch, F against the people, and F against a replay.
5. Scale: 10,000 / 100,000 / 1,000,000 synthetic vectors (people of 1-19 photos),
   each in a fresh process: seconds for the k-NN graph and for Chinese whispers, peak
   resident memory of the process (the vectors included), and BCubed F.
"""
from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np  # noqa: E402
from common import SEED  # noqa: E402 - first: the import path, TensorFlow quiet

from verifier import clustering as c  # noqa: E402
from verifier.assignment import Groups, regroup  # noqa: E402
from verifier.defaults import DEFAULT_GROUP_CENTRE  # noqa: E402


def components(vectors: np.ndarray, threshold: float) -> np.ndarray:
    """Connected components of the threshold graph (single linkage)."""
    g = c.neighbour_graph(vectors, threshold, c.DEFAULT_NEIGHBOURS)
    labels = np.arange(g.size)
    source = np.repeat(np.arange(g.size), np.diff(g.starts))
    while True:
        low = labels.copy()
        np.minimum.at(low, source, labels[g.targets])
        low = low[low]
        if (low == labels).all():
            return labels
        labels = low


def plain(vectors: np.ndarray, threshold: float, seed: int = 0) -> np.ndarray:
    g = c.neighbour_graph(vectors, threshold, c.DEFAULT_NEIGHBOURS)
    return c.chinese_whispers(g, seed=seed)


def dlib_whispers(vectors: np.ndarray, threshold: float) -> np.ndarray | None:
    try:
        import dlib
    except ImportError:
        return None
    return np.array(dlib.chinese_whispers_clustering(
        [dlib.vector(v.astype(float).tolist()) for v in vectors], threshold))


def compare(name: str, vectors: np.ndarray, truth: np.ndarray, threshold: float) -> None:
    print(f"\n{name}: {len(vectors)} faces of {len(set(truth.tolist()))} people, threshold {threshold:.4f}")
    print(f"{'method':<52}{'precision':>10}{'recall':>9}{'F':>9}")

    def row(label, labels):
        if labels is None:
            print(f"{label:<52}{'(not installed)':>28}")
            return
        p, r, f = c.bcubed(truth, labels)
        print(f"{label:<52}{p:>10.4f}{r:>9.4f}{f:>9.4f}")

    for t in (threshold - 0.05, threshold, threshold + 0.05):
        fs = [c.bcubed(truth, c.cluster_vectors(vectors, t, min_size=1, seed=s))[2] for s in range(20)]
        print(f"{'this project, seeds 0-19, threshold %.3f' % t:<52}{'':>10}{'min':>9}{min(fs):>9.4f}"
              f"   mean {np.mean(fs):.4f}")
    row("this project, seed 0", c.cluster_vectors(vectors, threshold, min_size=1))
    incremental = regroup(vectors, threshold)
    row("incremental (faces joining as they arrive, replay)", incremental)
    for centre in (1.0, 1.1, 1.3):
        row(f"incremental, centre {centre} (default {DEFAULT_GROUP_CENTRE})",
            regroup(vectors, threshold, centre=centre))
    row("incremental, no centre test (k-NN vote alone)", regroup(vectors, threshold, centre=None))
    rng = np.random.default_rng(0)
    grown = Groups(threshold)
    at = 0
    while at < len(vectors):
        step = int(rng.integers(1, 200))
        grown.add(vectors[at:at + step])
        at += step
    same = c.bcubed(incremental, grown.labels)[2]
    print(f"{'  incremental in random batches of 1-199 vs replay: F':<52}{'':>19}{same:>9.4f}")
    row("plain Chinese whispers (equal weights, one run)", plain(vectors, threshold))
    fs = [c.bcubed(truth, plain(vectors, threshold, s))[2] for s in range(20)]
    print(f"{'plain Chinese whispers, seeds 0-19':<52}{'':>10}{'min':>9}{min(fs):>9.4f}   mean {np.mean(fs):.4f}")
    row("dlib.chinese_whispers_clustering", dlib_whispers(vectors, threshold))
    row("connected components (single linkage)", components(vectors, threshold))


def seed_photos() -> None:
    from benchmarks.serve_load import dlib_workspace, verifier

    if not SEED.is_dir():
        print(f"seed photos absent ({SEED}); skipping part 1")
        return
    with tempfile.TemporaryDirectory() as tmp:
        home, data, flat = Path(tmp) / "home", Path(tmp) / "data", Path(tmp) / "flat"
        shutil.copytree(SEED, data)
        dlib_workspace(home, data)
        verifier(home, "evaluate", "--split", "validation")
        flat.mkdir()
        truth_of = {}
        for i, photo in enumerate(sorted(SEED.rglob("*.png"))):
            target = flat / f"photo_{i:03d}.png"
            shutil.copy(photo, target)
            truth_of[str(target)] = photo.parent.name
        started = time.perf_counter()
        out = json.loads(verifier(home, "cluster", str(flat), "--json").stdout)
        wall = time.perf_counter() - started
        faces = [(f["photo"], g["cluster"]) for g in out["clusters"] for f in g["faces"]]
        faces += [(f["photo"], -1) for f in out["unclustered_faces"]]
        truth = np.unique([truth_of[p] for p, _ in faces], return_inverse=True)[1]
        p, r, f = c.bcubed(truth, np.array([g for _, g in faces]))
        print(f"`verifier cluster` on the 128 seed photos (names hidden): {len(out['clusters'])} groups, "
              f"{len(out['unclustered_faces'])} faces unclustered, {wall:.1f} s as a fresh process; "
              f"BCubed precision {p:.4f} recall {r:.4f} F {f:.4f}")
        # the same faces' vectors, for the other methods
        import sqlalchemy

        engine = sqlalchemy.create_engine(f"sqlite:///{home / 'verifier.db'}")
        with engine.connect() as conn:
            rows = conn.execute(sqlalchemy.text(
                "select m.photo, f.vector from cluster_members m join face_vectors f on f.id = m.face_id "
                "join job_runs r on r.id = m.run_id where r.kind = 'cluster' and r.number = :run "
                "order by m.id"), {"run": out["run"]}).all()
        engine.dispose()
        vectors = np.stack([np.frombuffer(v, np.float32) for _, v in rows])
        truth = np.unique([truth_of[p] for p, _ in rows], return_inverse=True)[1]
        compare("seed photos, dlib-resnet vectors", vectors, truth, float(out["threshold"]))
        arriving(home, flat, truth_of)
        from verifier.lookalikes import look_alikes

        people = len(set(truth.tolist()))
        listed = look_alikes(vectors, truth, float(out["threshold"]))
        print(f"look-alike check on the seed people: {len(listed)} of {people * (people - 1) // 2} pairs "
              "of different people listed (goal: 0; they are all different people)")


def arriving(home: Path, flat: Path, truth_of: dict[str, str]) -> None:
    """The seed photos arriving in two folders, as `verifier cluster` users run it:
    the first eight people's photos, then the other eight's (the run continues the
    first), against `verifier cluster FIRST SECOND --regroup` on the same photos."""
    from benchmarks.serve_load import verifier

    first, second = flat.parent / "first", flat.parent / "second"
    for folder in (first, second):
        folder.mkdir()
    people = sorted(set(truth_of.values()))
    for path, person in truth_of.items():
        shutil.copy(path, (first if person in people[:8] else second) / Path(path).name)
    verifier(home, "cluster", str(first), "--regroup")
    grown = json.loads(verifier(home, "cluster", str(second), "--json").stdout)
    anew = json.loads(verifier(home, "cluster", str(first), str(second), "--regroup", "--json").stdout)

    def labels(run):
        of = {Path(f["photo"]).name: g["cluster"] for g in run["clusters"] for f in g["faces"]}
        return np.array([of.get(Path(p).name, -1) for p in sorted(truth_of)])

    truth = np.unique([truth_of[p] for p in sorted(truth_of)], return_inverse=True)[1]
    c_ = grown["counts"]
    print(f"seed photos arriving in two folders of 8 people: the second run continued run "
          f"{c_['continued']} ({c_['carried']} faces kept, {c_['new_faces']} new: {c_['to_groups']} joined "
          f"groups, {c_['to_new']} in new groups); BCubed F {c.bcubed(truth, labels(grown))[2]:.4f} "
          f"against the people; `--regroup` of both folders vs the two runs: F "
          f"{c.bcubed(labels(anew), labels(grown))[2]:.4f} (goal: 1.0, the same groups)")


def mixtures() -> None:
    from verifier.synthetic import identity_mixture

    for spread, lookalikes in ((0.025, None), (0.03, None), (0.025, 0.5), (0.025, 0.4)):
        vectors, truth = identity_mixture(300, (1, 20), spread=spread, lookalikes=lookalikes, seed=11)
        compare(f"synthetic mixture, spread {spread}" + (f", look-alike pairs {lookalikes} apart"
                                                          if lookalikes else ""), vectors, truth, 0.6)


def look_alike_check(seeds: int = 5) -> None:
    """`verifier gallery check` on synthetic galleries with look-alike pairs planted
    (centres 0.5 and 0.4 apart) and without: planted pairs listed, other pairs
    listed, seconds; over several seeds. Nothing is ever merged (the check writes nothing)."""
    from verifier.lookalikes import look_alikes
    from verifier.synthetic import identity_mixture

    print("\nlook-alike check (300 people of 1-20 photos, threshold 0.6), over seeds 0-"
          f"{seeds - 1}; goal: at least 90% of planted pairs listed, no other pair (spread "
          "0.03 at the same threshold: photos of one person farther apart than it was set for)")
    for spread, apart in ((0.025, 0.5), (0.025, 0.4), (0.025, None), (0.03, 0.5)):
        planted = listed = wrong = 0
        seconds = 0.0
        for seed in range(seeds):
            vectors, truth = identity_mixture(300, (1, 20), spread=spread, lookalikes=apart, seed=seed)
            t = time.perf_counter()
            found = {(p.first, p.second) for p in look_alikes(vectors, truth, 0.6)}
            seconds += time.perf_counter() - t
            pairs = {(2 * i, 2 * i + 1) for i in range(150)} if apart else set()
            planted += len(pairs)
            listed += len(found & pairs)
            wrong += len(found - pairs)
        share = f"{listed}/{planted} ({listed / planted:.1%})" if planted else "none planted"
        print(f"  spread {spread}, look-alikes {apart or '-'} apart: listed {share}, other pairs "
              f"listed {wrong}, {seconds / seeds * 1000:.0f} ms per gallery")


def stream(n: int = 100_000, batch: int = 1000) -> None:
    """Faces arriving: ``n`` seeded synthetic faces (people of 1-19 photos, threshold
    0.6) given to :class:`Groups` ``batch`` at a time; seconds per batch, BCubed F
    against the people, and F between the groups made so and one replay of every
    face in batches of another size (goal: 1.0)."""
    from verifier.synthetic import identity_mixture

    vectors, truth = identity_mixture(max(1, n // 10), (1, 19), seed=5)
    order = np.random.default_rng(5).permutation(len(vectors))[:n]
    vectors, truth = vectors[order], truth[order]
    groups = Groups(0.6)
    seconds = []
    for at in range(0, len(vectors), batch):
        started = time.perf_counter()
        groups.add(vectors[at:at + batch])
        seconds.append(time.perf_counter() - started)
    started = time.perf_counter()
    replay = regroup(vectors, 0.6, batch=2500)
    replayed = time.perf_counter() - started
    print(f"\na stream of {len(vectors):,} synthetic faces in batches of {batch:,} (incremental, "
          f"threshold 0.6): per batch p50 {np.median(seconds):.3f} s, p90 {np.quantile(seconds, 0.9):.3f} s, "
          f"max {max(seconds):.3f} s (goal < 1 s per 1,000 faces); last batch, against "
          f"{len(vectors) - batch:,} faces grouped: {seconds[-1]:.3f} s")
    print(f"  BCubed F against the people {c.bcubed(truth, groups.labels)[2]:.4f}; a replay of every "
          f"face in batches of 2,500 ({replayed:.1f} s) vs the stream: F "
          f"{c.bcubed(replay, groups.labels)[2]:.4f} (goal: 1.0, the same groups)")


def scale_one(n: int) -> dict:
    from verifier.synthetic import identity_mixture

    vectors, truth = identity_mixture(max(1, n // 10), (1, 19), seed=5)
    vectors, truth = vectors[:n], truth[:n]
    started = time.perf_counter()
    graph = c.neighbour_graph(vectors, 0.6, c.DEFAULT_NEIGHBOURS)
    graphed = time.perf_counter()
    weights = c.closeness(graph, 0.6)
    runs = [c.chinese_whispers(graph, weights=weights, seed=s) for s in range(c.DEFAULT_RESTARTS)]
    best = max(runs, key=lambda labels: c.modularity(graph, weights, labels))
    labels = c.relabel(best, 1)
    done = time.perf_counter()
    return {"n": len(vectors), "graph_s": graphed - started, "group_s": done - graphed,
            "total_s": done - started, "edges": graph.edges,
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "f": c.bcubed(truth, labels)[2]}


def scale(sizes: list[int]) -> None:
    print(f"\nscale (fresh process each; k = {c.DEFAULT_NEIGHBOURS}, exact k-NN up to "
          f"{c.EXACT_LIMIT:,} vectors, IVF above; {c.DEFAULT_RESTARTS} Chinese whispers runs)")
    print(f"{'vectors':>10}{'k-NN graph s':>14}{'grouping s':>12}{'total s':>9}{'edges':>12}"
          f"{'peak MB':>9}{'BCubed F':>10}")
    for n in sizes:
        out = subprocess.run([sys.executable, __file__, "--scale-one", str(n)], capture_output=True,
                             text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{r['n']:>10,}{r['graph_s']:>14.1f}{r['group_s']:>12.1f}{r['total_s']:>9.1f}"
              f"{r['edges']:>12,}{r['peak_mb']:>9.0f}{r['f']:>10.4f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--skip-seed", action="store_true")
    parser.add_argument("--scale-one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.scale_one:
        print(json.dumps(scale_one(args.scale_one)))
        return
    if not args.skip_seed:
        seed_photos()
    mixtures()
    look_alike_check()
    stream()
    scale([int(s) for s in args.sizes.split(",") if s])


if __name__ == "__main__":
    main()
