"""The ``verifier`` command line: thin wrappers over the ``jobs`` functions."""
from __future__ import annotations

import functools
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any, Callable

import click

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _library_errors() -> tuple[type[BaseException], ...]:
    from storage.errors import StorageError
    from verifier.errors import VerifierError

    return (VerifierError, StorageError)


def friendly(func: Callable) -> Callable:
    """Turn the library's own exceptions into one-line click errors; Ctrl-C into
    a short message and exit status 130."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except _library_errors() as exc:
            raise click.ClickException(str(exc)) from None
        except KeyboardInterrupt:
            click.echo("interrupted: nothing half-written was kept", err=True)
            sys.exit(130)

    return wrapper


class Context:
    def __init__(self, home: Path | None, quiet: bool, db_url: str | None = None) -> None:
        self.home = home
        self.quiet = quiet
        self.db_url = db_url
        self._ws = None
        self._db = None

    def workspace(self):
        from storage.workspace import Workspace

        if self._ws is None:
            self._ws = Workspace.open(self.home)
        return self._ws

    def database(self):
        from storage.database import open_database

        if self._db is None:
            self._db = open_database(self.db_url or self.workspace().database_url)
        return self._db


def emit_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, default=str, ensure_ascii=False))


pass_ctx = click.make_pass_decorator(Context)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--home", type=click.Path(path_type=Path), envvar="VERIFIER_HOME",
              help="Workspace folder (database, models, indexes, reports). "
                   "Default: $VERIFIER_HOME or ~/.local/share/siamese-verifier.")
@click.option("--db-url", envvar="VERIFIER_DB_URL",
              help="SQLAlchemy database URL [default: SQLite file in the workspace]; "
                   "e.g. postgresql://user@host/db for shared or large galleries.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.version_option(package_name="siamese-verifier")
@click.pass_context
def main(ctx: click.Context, home: Path | None, db_url: str | None, quiet: bool,
         verbose: int) -> None:
    """siamese-verifier: train a Siamese face network, embed a gallery, evaluate, query.

    \b
    Example:
      verifier train --data ../shared/data/seed-faces --backbone tiny --weights none
    """
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    ctx.obj = Context(home, quiet, db_url)


TRAIN_OPTIONS = [
    click.option("--data", required=True, type=click.Path(path_type=Path, exists=True, file_okay=False),
                 help="Folder laid out as DATA/<person>/<photo>."),
    click.option("--backbone", default="vgg19", show_default=True,
                 type=click.Choice(["vgg19", "mobilenet_v2", "efficientnet_b0", "resnet50", "tiny",
                                    "dlib-resnet"]),
                 help="Feature extractor shared by both branches."),
    click.option("--weights", default="default",
                 help="imagenet (Keras download and cache), none (random), or PATH to a weights "
                      "file [default: imagenet; dlib's own file for dlib-resnet; none for tiny]."),
    click.option("--head", default="dense", show_default=True, type=click.Choice(["dense", "none"]),
                 help="dense: pooling + Dense(--embedding-dim); none: the backbone's output is "
                      "the embedding (dlib-resnet's descriptor, no training needed)."),
    click.option("--detector", default="mtcnn", show_default=True, type=click.Choice(["mtcnn", "none"]),
                 help="mtcnn: detect and align the most prominent face; none: the whole photo "
                      "(the tutorial). Recorded in the model; every later command uses it."),
    click.option("--face-padding", default=0.25, show_default=True, type=click.FloatRange(0, 2),
                 help="Margin around the aligned face, as a fraction of the face template."),
    click.option("--require-face", is_flag=True,
                 help="Skip photos without a detected face instead of using the whole photo."),
    click.option("--fine-tune", default=0.10, show_default=True, type=click.FloatRange(0, 1),
                 help="Fraction of backbone layers left trainable (the rest is frozen and cached)."),
    click.option("--image-size", type=click.IntRange(32, 1024),
                 help="Input side in pixels [default: 224; 64 for tiny; 150 for dlib-resnet; "
                      "the tutorial used 244]."),
    click.option("--embedding-dim", default=64, show_default=True, type=click.IntRange(2, 4096)),
    click.option("--margin", default=1.0, show_default=True,
                 type=click.FloatRange(min=0, min_open=True), help="Contrastive loss margin."),
    click.option("--epochs", default=20, show_default=True, type=click.IntRange(1)),
    click.option("--batch-size", default=64, show_default=True, type=click.IntRange(2),
                 help="Photos per training step; every training pair among them is used."),
    click.option("--seed", default=0, show_default=True, type=int, help="Seed of every random draw."),
    click.option("--protocol", default="seed", show_default=True,
                 type=click.Choice(["seed", "image-disjoint", "identity-disjoint"]),
                 help="How pairs are formed and split 70/20/10 into train/validation/test."),
    click.option("--patience", type=click.IntRange(1),
                 help="Stop when validation loss has not improved for this many epochs [default: off]."),
    click.option("--name", help="Name of the model version [default: BACKBONE-DATE-TIME]."),
    click.option("--max-pixels", default=50_000_000, show_default=True, type=click.IntRange(1),
                 help="Photos larger than this (width x height) are skipped."),
]


def train_options(func: Callable) -> Callable:
    for option in reversed(TRAIN_OPTIONS):
        func = option(func)
    return func


def _train_opts(kwargs: dict):
    from .train import TrainOptions

    return TrainOptions(**{k: kwargs.pop(k) for k in list(kwargs)
                           if k in TrainOptions.__dataclass_fields__})


@main.command()
@train_options
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_ctx
@friendly
def train(ctx: Context, as_json: bool, **kwargs: Any) -> None:
    """Train a Siamese network on a folder of face photos and save a model version.

    The frozen part of the backbone runs once per photo; only the trainable tail
    and the Dense head are trained. The model, its config, the pair splits and the
    loss history are saved in the workspace.

    \b
    Example:
      verifier train --data ./faces --backbone mobilenet_v2 --epochs 10
    """
    from .train import train as run_train

    echo = (lambda s: click.echo(s, err=True)) if as_json else click.echo
    result = run_train(ctx.workspace(), _train_opts(kwargs), quiet=ctx.quiet, echo=echo,
                       database=ctx.database())
    if as_json:
        emit_json({"name": result.name, "path": str(result.path),
                   "pair_counts": result.pairs.counts(), "history": result.history,
                   "seconds": result.seconds})


@main.command()
@click.option("--data", required=True, type=click.Path(path_type=Path, exists=True, file_okay=False),
              help="Gallery folder laid out as DATA/<person>/<photo>.")
@click.option("--model", help="Model version [default: the most recent].")
@click.option("--batch-size", default=32, show_default=True, type=click.IntRange(1))
@click.option("--prune", is_flag=True, help="Remove photos that are gone from the folder.")
@click.option("--wait", is_flag=True, help="Wait for another running embed instead of failing.")
@click.option("--index-factory", help="FAISS factory string, e.g. HNSW32 or IVF1024,Flat "
                                      "[default: Flat, exact].")
@click.option("--max-pixels", default=50_000_000, show_default=True, type=click.IntRange(1))
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@pass_ctx
@friendly
def embed(ctx: Context, data: Path, model: str | None, batch_size: int, prune: bool, wait: bool,
          index_factory: str | None, max_pixels: int, as_json: bool) -> None:
    """Embed every photo of a gallery folder into the model's FAISS index.

    Content-addressed: unchanged photos cost no model call, moved ones only have
    their path updated, changed ones are embedded again. Bad files are recorded
    and skipped. Safe to interrupt and run again.

    \b
    Example:
      verifier embed --data ./faces --model vgg19-20260101-120000
    """
    from .embed import embed_gallery

    summary = embed_gallery(ctx.workspace(), ctx.database(), data, model=model,
                            batch_size=batch_size, prune=prune, wait=wait,
                            index_factory=index_factory, max_pixels=max_pixels, quiet=ctx.quiet)
    if as_json:
        emit_json(summary.as_dict())
    else:
        for line in summary.lines():
            click.echo(line)


@main.command(name="gallery")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_ctx
@friendly
def gallery_cmd(ctx: Context, as_json: bool) -> None:
    """List the gallery: identities with photo counts, models with embedded counts.

    \b
    Example:
      verifier gallery --json
    """
    from storage.gallery import identity_counts, model_counts

    with ctx.database()() as session:
        people, models = identity_counts(session), model_counts(session)
    if as_json:
        emit_json({"identities": [{"name": n, "photos": c} for n, c in people],
                   "models": [{"name": n, "backbone": b, "embeddings": c, "threshold": t}
                              for n, b, c, t in models]})
        return
    click.echo(f"{len(people)} identities, {sum(c for _, c in people)} photos")
    for name, count in people:
        click.echo(f"  {name:<32} {count:>6}")
    click.echo(f"{len(models)} models")
    for name, backbone, count, threshold in models:
        t = f"threshold {threshold:.4f}" if threshold is not None else "not calibrated"
        click.echo(f"  {name:<32} {backbone:<16} {count:>6} embedded  {t}")


@main.command()
@click.option("--repair", is_flag=True, help="Rebuild indexes from the stored vectors.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@pass_ctx
@friendly
def doctor(ctx: Context, repair: bool, as_json: bool) -> None:
    """Check that database, index files and photos on disk agree.

    Exits 0 when all agree, 1 with each problem listed otherwise. --repair rebuilds
    every mismatched index from the vectors stored in the database.

    \b
    Example:
      verifier doctor --repair
    """
    from .doctor import check_workspace

    report = check_workspace(ctx.workspace(), ctx.database(), repair=repair)
    if as_json:
        emit_json({"healthy": report.healthy, "problems": report.problems,
                   "repaired": report.repaired, "checked": report.checked})
    else:
        for line in report.repaired:
            click.echo(f"repaired: {line}")
        for line in report.problems:
            click.echo(f"problem: {line}")
        if report.healthy:
            click.echo(f"ok: {report.checked['models']} models, {report.checked['photos']} photos; "
                       "database, indexes and files agree")
    if not report.healthy:
        sys.exit(1)


def _metric_table(ev) -> list[str]:
    keys = ["accuracy", "balanced_accuracy", "precision", "recall", "f1", "far", "frr"]

    def f(v):
        return "n/a" if v is None else f"{v:.4f}"

    lines = [f"model {ev.model}, {ev.split} split: {ev.metrics['pairs']} pairs "
             f"({ev.metrics['positives']} same person); evaluation run {ev.run_id}",
             f"{'':<20}{'threshold ' + format(ev.threshold, '.4f'):>18}{'tutorial 0.5':>16}"]
    lines += [f"{k:<20}{f(ev.metrics[k]):>18}{f(ev.tutorial[k]):>16}" for k in keys]
    c, t = ev.metrics["confusion"], ev.tutorial["confusion"]
    lines.append(f"{'TP/FP/TN/FN':<20}{'%d/%d/%d/%d' % (c['tp'], c['fp'], c['tn'], c['fn']):>18}"
                 f"{'%d/%d/%d/%d' % (t['tp'], t['fp'], t['tn'], t['fn']):>16}")
    lines.append(f"threshold rule: {ev.threshold_rule}")
    for k in ("roc_auc", "eer", "tar_at_far_1e-2", "tar_at_far_1e-3"):
        lines.append(f"{k:<20}{f(ev.metrics[k]):>18}")
    if ev.folds:
        lines.append(f"{str(ev.folds['folds']) + '-fold accuracy':<20}"
                     f"{ev.folds['mean']:>12.4f} +- {ev.folds['std']:.4f}")
    return lines


@main.command()
@click.option("--model", help="Model version [default: the most recent].")
@click.option("--split", default="test", show_default=True,
              type=click.Choice(["train", "validation", "test"]), help="Which saved pairs to score.")
@click.option("--threshold", type=float, help="Use this distance threshold instead of calibrating.")
@click.option("--target-far", type=click.FloatRange(0, 1),
              help="Calibrate the loosest threshold whose false-accept rate on validation is at most this.")
@click.option("--folds", type=click.IntRange(2), help="Also report k-fold accuracy (LFW style), e.g. 10.")
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as one JSON document.")
@pass_ctx
@friendly
def evaluate(ctx: Context, model: str | None, split: str, threshold: float | None,
             target_far: float | None, folds: int | None, as_json: bool) -> None:
    """Score every pair of a saved split by embedding distance and report metrics.

    The threshold is calibrated on the validation split (best accuracy, or
    --target-far) and stored with the model; the tutorial's fixed 0.5 is shown
    beside it. Each run is stored with its per-pair distances for `verifier report`.

    \b
    Example:
      verifier evaluate --folds 10 --target-far 0.01
    """
    from .evaluate import evaluate as run_evaluate

    ev = run_evaluate(ctx.workspace(), ctx.database(), model=model, split=split,
                      threshold=threshold, target_far=target_far, folds=folds, quiet=ctx.quiet)
    if as_json:
        emit_json(ev.as_dict())
    else:
        for line in _metric_table(ev):
            click.echo(line)


@main.command()
@click.argument("run", required=False, type=int)
@click.option("--format", "fmt", default="html", show_default=True,
              type=click.Choice(["html", "csv", "json"]))
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False),
              help="Output file [default: HOME/reports/run<RUN>.<format>].")
@pass_ctx
@friendly
def report(ctx: Context, run: int | None, fmt: str, out: Path | None) -> None:
    """Export a pair accuracy report of an evaluation run (default: the latest).

    CSV: one row per pair. JSON: the run's configuration and metrics. HTML: one
    self-contained file with ROC and DET curves, distance histograms, the
    confusion matrix, a per-identity table and the worst errors as photo pairs.

    \b
    Example:
      verifier report --format html --out report.html
    """
    from .evaluate import latest_run
    from .report import write_report

    if out is None:
        with ctx.database()() as session:
            run = latest_run(session, run).id
        out = ctx.workspace().reports_dir / f"run{run}.{fmt}"
    path = write_report(ctx.database(), out, fmt, run)
    click.echo(f"report written to {path}")


@main.command()
@train_options
@click.option("--target-far", type=click.FloatRange(0, 1),
              help="Calibrate for this false-accept rate instead of best accuracy.")
@click.option("--format", "fmt", default="html", show_default=True,
              type=click.Choice(["html", "csv", "json"]), help="Report format.")
@pass_ctx
@friendly
def pipeline(ctx: Context, target_far: float | None, fmt: str, **kwargs: Any) -> None:
    """Train, embed the gallery, evaluate the test pairs and write a report.

    Takes every option of `verifier train`. Prints the evaluation table and where
    the report is.

    \b
    Example:
      verifier pipeline --data ../shared/data/seed-faces --backbone tiny --weights none
    """
    from .pipeline import run_pipeline

    result = run_pipeline(ctx.workspace(), ctx.database(), _train_opts(kwargs),
                          report_format=fmt, target_far=target_far, quiet=ctx.quiet,
                          echo=click.echo)
    for line in _metric_table(result.evaluation):
        click.echo(line)
    click.echo(f"report: {result.report}")


@main.command()
@click.argument("photos", nargs=-1, required=True)
@click.option("-k", "k", default=5, show_default=True, type=click.IntRange(1), help="Identities to list.")
@click.option("--model", help="Model version [default: the most recent].")
@click.option("--json", "as_json", is_flag=True, help="Print the answers as one JSON document.")
@click.option("--csv", "csv_path", type=click.Path(path_type=Path, dir_okay=False),
              help="Also write one row per photo and rank to this CSV file.")
@pass_ctx
@friendly
def query(ctx: Context, photos: tuple[str, ...], k: int, model: str | None, as_json: bool,
          csv_path: Path | None) -> None:
    """Find the most similar people in the gallery for each photo.

    PHOTOS are files, folders (every photo inside) or - for standard input. Each
    identity is ranked by its closest gallery photo; a match passes when its
    distance is within the model's calibrated threshold. When no identity passes,
    the answer is "unknown" and the nearest ones are still listed. Exits 1 if any
    photo could not be answered.

    \b
    Example:
      verifier query new_photo.jpg -k 3
      cat photo.jpg | verifier query - --json
    """
    from .query import query as run_query

    results = run_query(ctx.workspace(), ctx.database(), photos, k=k, model=model,
                        stdin=click.get_binary_stream("stdin"))
    if csv_path:
        import csv
        import io

        from storage.files import write_text_atomic

        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(["photo", "rank", "identity", "distance", "gallery_photo", "passes", "unknown", "error"])
        for r in results:
            for m in r.matches or [None]:
                w.writerow([r.photo, m.rank if m else "", m.identity if m else "",
                            f"{m.distance:.6f}" if m else "", m.photo if m else "",
                            "" if m is None or m.passes is None else int(m.passes), int(r.unknown),
                            r.error or ""])
        write_text_atomic(csv_path, buf.getvalue())
    if as_json:
        emit_json({"results": [r.as_dict() for r in results]})
    else:
        for r in results:
            if r.error:
                click.echo(f"{r.photo}: error: {r.error}", err=True)
                continue
            best = r.matches[0] if r.matches else None
            verdict = "unknown" if r.unknown else best.identity
            note = "" if best is None or best.passes is not None else \
                " (model not calibrated: run `verifier evaluate`)"
            click.echo(f"{r.photo}: {verdict}{note}")
            click.echo(f"  {'rank':>4}  {'identity':<28} {'distance':>9}  {'passes':<6}  gallery photo")
            for m in r.matches:
                passes = "-" if m.passes is None else ("yes" if m.passes else "no")
                click.echo(f"  {m.rank:>4}  {m.identity:<28} {m.distance:>9.4f}  {passes:<6}  {m.photo}")
    if any(r.error for r in results):
        sys.exit(1)


@main.command()
@click.argument("photo_a")
@click.argument("photo_b")
@click.option("--model", help="Model version [default: the most recent].")
@click.option("--threshold", type=float, help="Override the model's calibrated threshold.")
@click.option("--json", "as_json", is_flag=True, help="Print the answer as JSON.")
@pass_ctx
def verify(ctx: Context, photo_a: str, photo_b: str, model: str | None, threshold: float | None,
           as_json: bool) -> None:
    """Decide whether two photos show the same person.

    Prints the distance, the threshold and the decision. Exit status: 0 = same
    person, 1 = different people, 2 = error (unreadable photo, no face, no model).
    Either photo may be - for standard input.

    \b
    Example:
      verifier verify a.jpg b.jpg && echo same
    """
    from .query import verify as run_verify

    try:
        v = run_verify(ctx.workspace(), ctx.database(), photo_a, photo_b, model=model,
                       threshold=threshold, stdin=click.get_binary_stream("stdin"))
    except _library_errors() as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(2)
    if as_json:
        emit_json(v.as_dict())
    else:
        click.echo(f"{'same' if v.same else 'different'}: distance {v.distance:.4f}, "
                   f"threshold {v.threshold:.4f} (model {v.model})")
    sys.exit(0 if v.same else 1)


@main.group()
def datasets() -> None:
    """Public datasets this project knows how to download.

    \b
    Example:
      verifier datasets fetch seed-faces --to ./seed-faces
    """


@datasets.command()
@click.argument("name", type=click.Choice(["seed-faces"]))
@click.option("--to", "dest", type=click.Path(path_type=Path, file_okay=False),
              help="Destination folder [default: HOME/datasets/NAME].")
@click.option("--url", "base_url", help="Base URL to download from [default: the pinned origin].")
@pass_ctx
@friendly
def fetch(ctx: Context, name: str, dest: Path | None, base_url: str | None) -> None:
    """Download the tutorial's 128 photos (pinned commit), checking each SHA-256.

    Files already present and correct are kept; an interrupted transfer resumes.
    Offline, it fails with a message on how to pass a local folder instead.

    \b
    Example:
      verifier datasets fetch seed-faces --to ./seed-faces
    """
    from .datasets import SEED_FACES_URL, fetch_seed_faces

    dest = dest or ctx.workspace().root / "datasets" / name
    summary = fetch_seed_faces(dest, base_url=base_url or SEED_FACES_URL, quiet=ctx.quiet)
    click.echo(f"{name}: {len(summary.downloaded)} downloaded ({summary.resumed} resumed), "
               f"{summary.present} already present, in {summary.folder}")


if __name__ == "__main__":  # pragma: no cover
    main()
