"""``verifier evaluate``, ``report``, ``query`` and ``verify``: the scoring commands."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from verifier import defaults as d

from .context import MAX_FACES, MIN_QUALITY, MODEL, Context, emit_json, friendly, pass_ctx


def metric_table(ev) -> list[str]:
    keys = ["accuracy", "balanced_accuracy", "precision", "recall", "f1", "far", "frr"]

    def f(v):
        return "n/a" if v is None else f"{v:.4f}"

    lines = [f"model {ev.model}, {ev.split} split: {ev.metrics['pairs']} pairs "
             f"({ev.metrics['positives']} same person); evaluation run {ev.run}",
             f"{'':<20}{'threshold ' + format(ev.threshold, '.4f'):>18}{'tutorial ' + format(d.TUTORIAL_THRESHOLD, 'g'):>16}"]
    lines += [f"{k:<20}{f(ev.metrics[k]):>18}{f(ev.tutorial[k]):>16}" for k in keys]
    c, t = ev.metrics["confusion"], ev.tutorial["confusion"]
    lines.append(f"{'TP/FP/TN/FN':<20}{'%d/%d/%d/%d' % (c['tp'], c['fp'], c['tn'], c['fn']):>18}"
                 f"{'%d/%d/%d/%d' % (t['tp'], t['fp'], t['tn'], t['fn']):>16}")
    lines.append(f"threshold rule: {ev.threshold_rule}")
    if c["tp"] + c["fp"] == 0:
        lines.append("note: this threshold accepts no pair (rejecting everything was the most "
                     "accurate choice on validation); try --target-far 0.01")
    for k in ("roc_auc", "eer", "tar_at_far_1e-2", "tar_at_far_1e-3"):
        lines.append(f"{k:<20}{f(ev.metrics[k]):>18}")
    if ev.folds:
        lines.append(f"{str(ev.folds['folds']) + '-fold accuracy':<20}"
                     f"{ev.folds['mean']:>12.4f} +- {ev.folds['std']:.4f}")
    from ..evaluate import overlap_warning

    if ev.protocol:
        lines.append(f"protocol: {ev.protocol}")
    warning = overlap_warning(ev.overlap)
    if warning:
        lines.append(f"WARNING: {warning}")
    if ev.unscored:
        lines.append(f"{len(ev.unscored)} listed pairs not scored (photos missing or unusable); "
                     f"first: line {ev.unscored[0]['line']}: {ev.unscored[0]['reason']}")
    return lines


@click.command()
@MODEL
@click.option("--split", default="test", show_default=True,
              type=click.Choice(["train", "validation", "test"]), help="Which saved pairs to score.")
@click.option("--threshold", type=float, help="Score at this distance threshold instead of the model's.")
@click.option("--target-far", type=click.FloatRange(0, 1),
              help="Score at the threshold whose false-accept rate on validation is at most this "
                   "(for this report; the model keeps its own).")
@click.option("--folds", type=click.IntRange(2), help="Also report k-fold accuracy (LFW style), e.g. 10.")
@click.option("--pairs", "pairs_file", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="Score this pair list instead of a saved split: LFW's pairs.txt (its own "
                   "folds) or a CSV with columns a,b,label. Needs --data.")
@click.option("--data", type=click.Path(path_type=Path, exists=True, file_okay=False),
              help="Folder of the photos a --pairs list names (DATA/<person>/<photo>).")
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as one JSON document.")
@pass_ctx
@friendly
def evaluate(ctx: Context, model: str | None, split: str, threshold: float | None,
             target_far: float | None, folds: int | None, pairs_file: Path | None,
             data: Path | None, as_json: bool) -> None:
    """Score every pair of a saved split, or of a benchmark's pair list, and report metrics.

    Pairs are scored at the model's threshold, calibrated when it was trained on
    validation photos training never saw (a model from before that is calibrated
    here once, for best accuracy); --threshold or --target-far score at another
    without changing the model's. The tutorial's fixed 0.5 is shown beside it. Each run is stored with its per-pair distances for `verifier report`.
    With --pairs, LFW's pairs.txt is scored with its own 10 folds (threshold chosen
    on nine, measured on the tenth); missing or unusable photos are listed.

    \b
    Example:
      verifier evaluate --folds 10 --target-far 0.01
      verifier evaluate --pairs lfw/pairs.txt --data lfw/lfw
    """
    if (pairs_file is None) != (data is None):
        raise click.UsageError("--pairs and --data go together")
    if pairs_file is not None:
        from ..evaluate import evaluate_pairs

        ev = evaluate_pairs(ctx.workspace(), ctx.database(), pairs_file, data, model=model,
                            threshold=threshold, folds=folds, quiet=ctx.quiet)
    else:
        from ..evaluate import evaluate as run_evaluate

        ev = run_evaluate(ctx.workspace(), ctx.database(), model=model, split=split,
                          threshold=threshold, target_far=target_far, folds=folds, quiet=ctx.quiet)
    if as_json:
        emit_json(ev.as_dict())
    else:
        for line in metric_table(ev):
            click.echo(line)


@click.command()
@click.argument("runs", nargs=-1, type=int)
@click.option("--format", "fmt", default=d.DEFAULT_REPORT_FORMAT, show_default=True,
              type=click.Choice(d.REPORT_FORMATS))
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False),
              help="Output file [default: HOME/reports/run<RUN>.<format>].")
@pass_ctx
@friendly
def report(ctx: Context, runs: tuple[int, ...], fmt: str, out: Path | None) -> None:
    """Export a pair accuracy report of an evaluation run (default: the latest), or
    compare several runs.

    CSV: one row per pair. JSON: the run's configuration and metrics. HTML: one
    self-contained file with ROC and DET curves, distance histograms, the
    confusion matrix, a per-identity table and the worst errors as photo pairs.
    With two or more RUNS: their ROC and DET curves on the same axes and their
    metrics side by side (HTML), or the table (CSV, JSON); says whether the runs
    scored the same pairs.

    \b
    Example:
      verifier report --format html --out report.html
      verifier report 3 5 --format html
    """
    from ..evaluate import latest_run
    from ..report import write_report

    if len(runs) > 1:
        from ..comparison import write_comparison

        out = out or ctx.workspace().reports_dir / f"compare-{'-'.join(map(str, runs))}.{fmt}"
        click.echo(f"report written to {write_comparison(ctx.database(), out, fmt, list(runs))}")
        return
    run = runs[0] if runs else None
    if out is None:
        with ctx.database()() as session:
            run = latest_run(session, run).number
        out = ctx.workspace().reports_dir / f"run{run}.{fmt}"
    path = write_report(ctx.database(), out, fmt, run)
    click.echo(f"report written to {path}")


@click.command()
@click.argument("photos", nargs=-1, required=True)
@click.option("-k", "k", default=d.DEFAULT_K, show_default=True, type=click.IntRange(1), help="Identities to list.")
@MODEL
@click.option("--json", "as_json", is_flag=True, help="Print the answers as one JSON document.")
@click.option("--csv", "csv_path", type=click.Path(path_type=Path, dir_okay=False),
              help="Also write one row per photo, face and rank to this CSV file.")
@MAX_FACES
@MIN_QUALITY
@pass_ctx
@friendly
def query(ctx: Context, photos: tuple[str, ...], k: int, model: str | None, as_json: bool,
          csv_path: Path | None, max_faces: int, min_quality: float) -> None:
    """Find the most similar people in the gallery for each face of each photo.

    PHOTOS are files, folders (every photo inside) or - for standard input. Every
    face is answered (up to --max-faces, largest first, with its box). Each
    identity is ranked by its closest gallery photo; a match passes when its
    distance is within the model's calibrated threshold. When no identity passes,
    the answer is "unknown" and the nearest ones are still listed; a face under
    --min-quality is "unknown (poor quality)" whatever its distances. Exits 1 if
    any photo could not be answered.

    \b
    Example:
      verifier query new_photo.jpg -k 3
      cat photo.jpg | verifier query - --json
    """
    from ..query import query as run_query

    results = []
    for r in run_query(ctx.workspace(), ctx.database(), photos, k=k, model=model,
                       stdin=click.get_binary_stream("stdin"), max_faces=max_faces,
                       min_quality=min_quality):
        results.append(r)
        if not as_json:
            _print_result(r)
    if csv_path:
        from ..query import write_csv

        write_csv(results, csv_path)
    if as_json:
        emit_json({"results": [r.as_dict() for r in results]})
    if any(r.error for r in results):
        sys.exit(1)


def _verdict(answer) -> str:
    best = answer.matches[0] if answer.matches else None
    note = "" if best is None or best.passes is not None else \
        " (model not calibrated: run `verifier evaluate`)"
    if answer.reason:
        return "unknown (poor quality: too poor to judge)"
    return ("unknown" if answer.unknown else best.identity) + note


def _print_result(r) -> None:
    if r.error:
        click.echo(f"{r.photo}: error: {r.error}", err=True)
        return
    if len(r.faces) == 1:
        click.echo(f"{r.photo}: {_verdict(r)}{_quality(r.faces[0], '  (', ')')}")
        _print_matches(r.matches, "  ")
        return
    click.echo(f"{r.photo}: {len(r.faces)} faces ({r.width}x{r.height}), largest first")
    for i, face in enumerate(r.faces):
        left, top, w, h = face.box
        click.echo(f"  face {i} at left {left}, top {top}, {w}x{h}: {_verdict(face)}{_quality(face, '  (', ')')}")
        _print_matches(face.matches, "    ")


def _quality(face, before: str = "  ", after: str = "") -> str:
    """``quality 0.91`` with the reasons of a poor face, framed by ``before`` and
    ``after``; nothing for the whole photo (a model without a detector)."""
    q = face.quality
    if q is None:
        return ""
    reasons = q.reasons()
    return f"{before}quality {q.score:.2f}" + (f": {', '.join(reasons)}" if reasons else "") + after


def _print_matches(matches, indent: str) -> None:
    click.echo(f"{indent}{'rank':>4}  {'identity':<28} {'distance':>9}  {'passes':<6}  gallery photo")
    for m in matches:
        passes = "-" if m.passes is None else ("yes" if m.passes else "no")
        click.echo(f"{indent}{m.rank:>4}  {m.identity:<28} {m.distance:>9.4f}  {passes:<6}  {m.photo}")


@click.command()
@click.argument("photo_a")
@click.argument("photo_b")
@MODEL
@click.option("--threshold", type=float, help="Override the model's calibrated threshold.")
@click.option("--face-a", default=0, show_default=True, type=click.IntRange(0),
              help="Which face of PHOTO_A to compare (0 is the largest; see `verifier detect`).")
@click.option("--face-b", default=0, show_default=True, type=click.IntRange(0),
              help="Which face of PHOTO_B to compare.")
@click.option("--json", "as_json", is_flag=True, help="Print the answer as JSON.")
@MIN_QUALITY
@pass_ctx
@friendly(status=2)
def verify(ctx: Context, photo_a: str, photo_b: str, model: str | None, threshold: float | None,
           face_a: int, face_b: int, as_json: bool, min_quality: float) -> None:
    """Decide whether two photos show the same person.

    Prints the distance, the threshold and the decision. Exit status: 0 = same
    person, 1 = different people or a face under --min-quality (too poor to judge:
    "unknown"), 2 = error (unreadable photo, no face, no model).
    Either photo may be - for standard input. The largest face of each photo is
    compared unless --face-a/--face-b name another; a photo with several faces is
    said so.

    \b
    Example:
      verifier verify a.jpg b.jpg && echo same
      verifier verify group.jpg b.jpg --face-a 1
    """
    from ..query import verify as run_verify

    v = run_verify(ctx.workspace(), ctx.database(), photo_a, photo_b, model=model,
                   threshold=threshold, stdin=click.get_binary_stream("stdin"),
                   face_a=face_a, face_b=face_b, min_quality=min_quality)
    if as_json:
        emit_json(v.as_dict())
    else:
        verdict = ("unknown (poor quality: too poor to judge)" if v.reason
                   else "same" if v.same else "different")
        click.echo(f"{verdict}: distance {v.distance:.4f}, threshold {v.threshold:.4f} "
                   f"(model {v.model})")
        for photo, q in ((v.photo_a, v.quality_a), (v.photo_b, v.quality_b)):
            if v.reason and q is not None and q < min_quality:
                click.echo(f"  {photo}: face quality {q:.2f} is under {min_quality:.2f} "
                           "(--min-quality 0 judges it anyway)")
        for label, photo, found, face, box in (("a", v.photo_a, v.faces_a, v.face_a, v.box_a),
                                               ("b", v.photo_b, v.faces_b, v.face_b, v.box_b)):
            if found and (found > 1 or face):
                left, top, w, h = box
                click.echo(f"  {photo}: {found} faces; compared face {face} at left {left}, "
                           f"top {top}, {w}x{h} (choose another with --face-{label})")
    sys.exit(0 if v.same else 1)


@click.command()
@click.argument("photos", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="Print the faces as one JSON document.")
@click.option("--chips", "chips_dir", type=click.Path(path_type=Path, file_okay=False),
              help="Also write each face's aligned chip (150 px PNG) into this folder.")
@MAX_FACES
@pass_ctx
@friendly
def detect(ctx: Context, photos: tuple[str, ...], as_json: bool, chips_dir: Path | None,
           max_faces: int) -> None:
    """Find every face in each photo: its box [left, top, width, height], the
    detector's score and five landmarks, largest first (face 0 is the largest, the
    number --face-a/--face-b of `verifier verify` take). Needs no model and does not
    touch the gallery. PHOTOS are files, folders or - for standard input. Exits 1
    if any photo could not be read.

    \b
    Example:
      verifier detect group.jpg
      verifier detect photos/ --json --chips chips/
    """
    from verifier.detection import CHIP_SIZE

    from ..detect import detect_many

    results = []
    for r in detect_many(photos, stdin=click.get_binary_stream("stdin"), max_faces=max_faces,
                         chip_size=CHIP_SIZE if chips_dir else None):
        results.append(r)
        if chips_dir:
            _write_chips(r, chips_dir, len(results))
        if not as_json:
            _print_detection(r)
    if as_json:
        emit_json({"results": [r.as_dict() for r in results]})
    if any(r.error for r in results):
        sys.exit(1)


def _write_chips(r, folder: Path, n: int) -> None:
    import io

    from PIL import Image

    from storage.files import write_bytes_atomic

    for i, face in enumerate(r.faces):
        buf = io.BytesIO()
        Image.fromarray(face.chip).save(buf, "PNG")
        # named by position, never by the photo's own name
        write_bytes_atomic(folder / f"photo{n:04d}-face{i:02d}.png", buf.getvalue())


def _print_detection(r) -> None:
    if r.error:
        click.echo(f"{r.photo}: error: {r.error}", err=True)
        return
    click.echo(f"{r.photo}: {len(r.faces)} face{'s' if len(r.faces) != 1 else ''} "
               f"({r.width}x{r.height})")
    for i, f in enumerate(r.faces):
        left, top, w, h = f.box
        click.echo(f"  face {i}: left {left}, top {top}, {w}x{h}  score {f.score:.3f}{_quality(f)}")


COMMANDS = [evaluate, report, query, verify, detect]
