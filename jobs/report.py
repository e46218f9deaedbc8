"""Pair accuracy reports of an evaluation run: CSV (one row per pair), JSON
(configuration and metrics), HTML (one self-contained file with figures)."""
from __future__ import annotations

import base64
import csv
import html
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from storage import evaluations, models
from storage.files import write_text_atomic
from verifier import plots
from verifier.defaults import TUTORIAL_THRESHOLD
from verifier.errors import VerifierError
from verifier.images import load_image

from .evaluate import latest_run


class ReportError(VerifierError):
    """A report cannot be written as asked (an unknown format)."""


@dataclass
class ScoredPairs:
    run: dict
    model: dict
    path_a: list[str]
    path_b: list[str]
    identity_a: list[str]
    identity_b: list[str]
    labels: np.ndarray
    distances: np.ndarray
    in_training: list[bool] | None = None  # a photo of the pair trained the model (by content)
    quality_a: list[float | None] | None = None  # face quality of each photo (None: not rated)
    quality_b: list[float | None] | None = None

    @property
    def threshold(self) -> float:
        return float(self.run["params"]["threshold"])

    @property
    def decisions(self) -> np.ndarray:
        return self.distances <= self.threshold


def load_scored(sessions: sessionmaker[Session], run_id: int | None = None) -> ScoredPairs:
    with sessions() as session:
        run = latest_run(session, run_id)
        model = models.model_by_id(session, run.model_id)
        pairs = evaluations.scored_pairs(session, run.id)
        run_doc = {"id": run.number, "params": run.params, "counts": run.counts,
                   "started": str(run.started), "ended": str(run.ended)}
        model_doc = {"name": model.name, "backbone": model.backbone, "config": model.config}
        artifact = Path(model.artifact)
    trained = _training_contents(artifact)
    in_training = None if trained is None else \
        [p.a.sha256 in trained or p.b.sha256 in trained for p in pairs]
    return ScoredPairs(run_doc, model_doc, [p.a.path for p in pairs], [p.b.path for p in pairs],
                       [p.a.identity for p in pairs], [p.b.identity for p in pairs],
                       np.array([p.label for p in pairs], dtype=np.int8),
                       np.array([p.distance for p in pairs], dtype=np.float64),
                       in_training, [p.a.quality for p in pairs], [p.b.quality for p in pairs])


def _training_contents(model_folder: Path) -> set[str] | None:
    """SHA-256 of the photos a model version was trained on, those of its training
    pairs (``None``: unknown)."""
    import numpy as np

    from .train import training_photos

    try:
        photos = training_photos(model_folder)
        with np.load(Path(model_folder) / "pairs.npz") as pairs:
            used = np.unique(np.r_[pairs["train_first"], pairs["train_second"]])
        return {photos[int(i)]["sha256"] for i in used}
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return None


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""A CSV cell beginning with one of these is a formula to a spreadsheet (OWASP's
CSV injection); such text cells are written with a leading ``'``."""


def csv_text(value: str) -> str:
    """``value`` as a CSV text cell no spreadsheet runs as a formula."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def relative_paths(scored: ScoredPairs) -> Callable[[str], str]:
    """A path as the service shows it: relative to the model's data folder or the
    evaluated folder, else the file's name; never where it lies on the server."""
    roots = [Path(r) for r in (scored.model.get("config", {}).get("data_root"),
                               scored.run.get("params", {}).get("data")) if r]

    def shown(path: str) -> str:
        for root in roots:
            try:
                return str(Path(path).relative_to(root))
            except ValueError:
                continue
        return Path(path).name

    return shown


def write_csv(scored: ScoredPairs, out: Path, shown: Callable[[str], str] | None = None) -> None:
    """Every pair as a CSV row; ``shown`` turns a photo's path into what the reader
    sees (default: the path itself)."""
    shown = shown or str
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["photo_a", "photo_b", "identity_a", "identity_b", "label", "distance",
                "decision", "correct", "photo_in_training", "quality_a", "quality_b"])
    seen = scored.in_training
    rated = lambda q: "" if q is None else f"{q:.4f}"  # noqa: E731
    for i, dec in enumerate(scored.decisions):
        w.writerow([csv_text(shown(scored.path_a[i])), csv_text(shown(scored.path_b[i])),
                    csv_text(scored.identity_a[i]), csv_text(scored.identity_b[i]),
                    int(scored.labels[i]), f"{scored.distances[i]:.6f}",
                    "same" if dec else "different", int(bool(dec) == bool(scored.labels[i])),
                    "" if seen is None else int(seen[i]), rated(scored.quality_a[i]),
                    rated(scored.quality_b[i])])
    write_text_atomic(out, buf.getvalue())


def report_json(scored: ScoredPairs) -> dict:
    return {"run": scored.run, "model": scored.model, "quality_bands": quality_bands(scored)}


def quality_bands(scored: ScoredPairs) -> list[dict]:
    """The pairs split by the lower face quality of their two photos: per band the
    pairs, same-person pairs, EER, and the false reject and accept rates at the
    run's threshold (``None`` where a band lacks the pairs to say)."""
    from verifier.metrics import eer
    from verifier.quality import QUALITY_BANDS, band_of

    lower = [None if qa is None or qb is None else min(qa, qb)
             for qa, qb in zip(scored.quality_a or [], scored.quality_b or [])]
    bands = np.array([band_of(q) for q in lower]) if lower else np.array([], dtype=str)
    out = []
    for name in [b for _, _, b in QUALITY_BANDS] + ["not rated"]:
        m = bands == name
        if not m.any():
            continue
        y, dec, d = scored.labels[m].astype(bool), scored.decisions[m], scored.distances[m]
        both = y.any() and (~y).any()
        out.append({"band": name, "pairs": int(m.sum()), "same": int(y.sum()),
                    "eer": float(eer(d, y.astype(int))) if both else None,
                    "frr": float((~dec & y).sum() / y.sum()) if y.any() else None,
                    "far": float((dec & ~y).sum() / (~y).sum()) if (~y).any() else None})
    return out


def per_identity(scored: ScoredPairs) -> list[dict]:
    """Accuracy, false accepts and false rejects of the pairs each identity is in."""
    out = []
    correct = scored.decisions == scored.labels.astype(bool)
    names = sorted(set(scored.identity_a) | set(scored.identity_b))
    ia, ib = np.array(scored.identity_a), np.array(scored.identity_b)
    for name in names:
        m = (ia == name) | (ib == name)
        y, dec = scored.labels[m].astype(bool), scored.decisions[m]
        out.append({"identity": name, "pairs": int(m.sum()), "same": int(y.sum()),
                    "accuracy": float(correct[m].mean()),
                    "false_accepts": int((dec & ~y).sum()), "false_rejects": int((~dec & y).sum())})
    return out


def img_tag(png: bytes, alt: str, width: int | None = None) -> str:
    w = f' width="{width}"' if width else ""
    return (f'<img alt="{html.escape(alt)}"{w} src="data:image/png;base64,'
            f'{base64.b64encode(png).decode()}">')


def _thumb(path: str, size: int = 112) -> str:
    from PIL import Image as PILImage

    try:
        img = PILImage.fromarray(load_image(path))
        img.thumbnail((size, size))
        buf = io.BytesIO()
        img.save(buf, "PNG")
        return img_tag(buf.getvalue(), Path(path).name)
    except Exception:
        return f'<div class="missing">{html.escape(Path(path).name)}<br>(unreadable)</div>'


def fmt_metric(v) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.4f}"
    return html.escape(str(v))


def _accepts_nothing_note(c: dict) -> str:
    if c["tp"] + c["fp"]:
        return ""
    return (" <b>The threshold accepts no pair:</b> on validation, rejecting everything was the "
            "most accurate choice, so the model does not separate these people yet. Train "
            "longer or on faces (--detector mtcnn, --backbone dlib-resnet), or calibrate "
            "with --target-far.")


def trust_note(scored: ScoredPairs) -> str:
    """The protocol, and a prominent warning when the scored pairs share photos or
    people with the training pairs (with the counts)."""
    from .evaluate import overlap_warning

    counts = scored.run["counts"]
    protocol = counts.get("protocol") or scored.model["config"].get("protocol", "?")
    out = f"<p>Protocol: <b>{html.escape(str(protocol))}</b>.</p>"
    warning = overlap_warning(counts.get("overlap"))
    if warning:
        out += f'<p class="warn" role="alert">Read with care: {html.escape(warning)}.</p>'
    unscored = counts.get("unscored") or []
    if unscored:
        out += (f'<p class="warn">{len(unscored)} of {counts.get("listed")} listed pairs were not '
                f"scored (photos missing or unusable; first: line {unscored[0]['line']}, "
                f"{html.escape(unscored[0]['reason'])}).</p>")
    return out


def _metric_tables(scored: ScoredPairs) -> tuple[str, str]:
    """The rows of the at-threshold table (ours and the tutorial's 0.5) and of the
    threshold-free one."""
    counts = scored.run["counts"]
    m, tut = counts["metrics"], counts["tutorial"]
    keys = ["accuracy", "balanced_accuracy", "precision", "recall", "f1", "far", "frr"]
    rows = "".join(f"<tr><td>{k}</td><td>{fmt_metric(m[k])}</td><td>{fmt_metric(tut[k])}</td></tr>"
                   for k in keys)
    free = "".join(f"<tr><td>{k}</td><td>{fmt_metric(m[k])}</td></tr>"
                   for k in ("roc_auc", "eer", "tar_at_far_1e-2", "tar_at_far_1e-3", "pairs", "positives"))
    folds = counts.get("folds")
    if folds:
        free += f"<tr><td>{folds['folds']}-fold accuracy</td><td>{folds['mean']:.4f} &plusmn; {folds['std']:.4f}</td></tr>"
    return rows, free


def _band_rows(scored: ScoredPairs) -> str:
    rows = quality_bands(scored)
    if not rows:
        return "<tr><td colspan=6>No pairs.</td></tr>"
    return "".join(
        f"<tr><td>{html.escape(r['band'])}</td><td>{r['pairs']}</td><td>{r['same']}</td>"
        f"<td>{fmt_metric(r['eer'])}</td><td>{fmt_metric(r['frr'])}</td><td>{fmt_metric(r['far'])}</td></tr>"
        for r in rows)


def _identity_rows(scored: ScoredPairs) -> str:
    return "".join(
        f"<tr><td>{html.escape(r['identity'])}</td><td>{r['pairs']}</td><td>{r['same']}</td>"
        f"<td>{r['accuracy']:.3f}</td><td>{r['false_accepts']}</td><td>{r['false_rejects']}</td></tr>"
        for r in per_identity(scored))


def _worst(scored: ScoredPairs, mask: np.ndarray, reverse: bool) -> str:
    """Thumbnails of the ten pairs of ``mask`` closest (or, ``reverse``, farthest)."""
    d = scored.distances
    idx = np.flatnonzero(mask)
    idx = idx[np.argsort(d[idx])]
    idx = idx[::-1][:10] if reverse else idx[:10]
    if not len(idx):
        return "<p>None.</p>"
    return "".join(
        f'<div class="pair">{_thumb(scored.path_a[i])}{_thumb(scored.path_b[i])}'
        f'<div>{html.escape(scored.identity_a[i])} / {html.escape(scored.identity_b[i])}'
        f'<br>distance {d[i]:.4f}</div></div>' for i in idx)


def _figures(scored: ScoredPairs) -> str:
    d, y, t = scored.distances, scored.labels, scored.threshold
    c = scored.run["counts"]["metrics"]["confusion"]
    return "\n".join([img_tag(plots.roc_png(d, y, t), "ROC curve"),
                      img_tag(plots.det_png(d, y), "DET curve"),
                      img_tag(plots.histogram_png(d, y, t), "distance histograms"),
                      img_tag(plots.confusion_png(c['tp'], c['fp'], c['tn'], c['fn']),
                              "confusion matrix")])


def write_html(scored: ScoredPairs, out: Path) -> None:
    """The self-contained HTML report: metrics, figures, per identity, worst pairs."""
    d, y, t = scored.distances, scored.labels, scored.threshold
    c = scored.run["counts"]["metrics"]["confusion"]
    rows, free = _metric_tables(scored)
    trust = trust_note(scored)
    dec = scored.decisions
    yb = y.astype(bool)
    cfg = scored.model["config"]
    params = scored.run["params"]
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Verification report: {html.escape(scored.model['name'])}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1.5em; }}
td, th {{ border: 1px solid #ccc; padding: 3px 10px; text-align: right; }}
td:first-child, th:first-child {{ text-align: left; }}
.figs img {{ margin: 0 1em 1em 0; }}
.pair {{ display: inline-block; margin: 0 1em 1em 0; text-align: center; font-size: 0.85em; }}
.pair img {{ margin: 2px; }}
.missing {{ display: inline-block; width: 112px; height: 112px; background: #eee; font-size: 0.7em; }}
.note {{ color: #555; font-size: 0.9em; }}
.warn {{ border: 2px solid #b3261e; background: #fdecea; padding: .6em .9em; font-weight: 600; }}
</style></head><body>
<h1>Verification report</h1>
{trust}
<p>Model <b>{html.escape(scored.model['name'])}</b> ({html.escape(scored.model['backbone'])},
input {cfg.get('image_size')} px, embedding {cfg.get('embedding_dim')}, protocol
{html.escape(str(cfg.get('protocol')))}, seed {cfg.get('seed')}), evaluation run {scored.run['id']}
on the <b>{html.escape(params['split'])}</b> split: {len(d)} pairs, {int(yb.sum())} same-person.
Threshold <b>{t:.4f}</b> ({html.escape(params['threshold_rule'])}; a pair is decided "same" when its
distance is at most the threshold).</p>
<h2>Metrics</h2>
<table><tr><th>at threshold</th><th>{t:.4f}</th><th>tutorial's {TUTORIAL_THRESHOLD:g}</th></tr>{rows}</table>
<table><tr><th>threshold-free</th><th></th></tr>{free}</table>
<p class="note">Answering "different" for every pair would score accuracy
{(~yb).mean():.4f} here.{_accepts_nothing_note(c)}</p>
<h2>Figures</h2>
<div class="figs">
{_figures(scored)}
</div>
<h2>By face quality</h2>
<p class="note">Pairs by the lower face quality of their two photos (detector confidence,
face size, sharpness, pose; 0-1). Photos embedded before ratings existed, and
whole photos of a model without a detector, are not rated.</p>
<table><tr><th>quality</th><th>pairs</th><th>same</th><th>EER</th><th>FRR at {t:.4f}</th>
<th>FAR at {t:.4f}</th></tr>{_band_rows(scored)}</table>
<h2>Per identity</h2>
<table><tr><th>identity</th><th>pairs</th><th>same</th><th>accuracy</th><th>false accepts</th>
<th>false rejects</th></tr>{_identity_rows(scored)}</table>
<h2>Worst false accepts (different people, closest)</h2>{_worst(scored, dec & ~yb, reverse=False)}
<h2>Worst false rejects (same person, farthest)</h2>{_worst(scored, ~dec & yb, reverse=True)}
</body></html>
"""
    write_text_atomic(out, page)


def _without_paths(value):
    """``value`` (a run's params, a model's config) with absolute paths cut to their names."""
    if isinstance(value, dict):
        return {k: _without_paths(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_paths(v) for v in value]
    if isinstance(value, str) and value.startswith("/"):
        return Path(value).name
    return value


def write_report(sessions: sessionmaker[Session], out: Path, fmt: str = "html",
                 run_id: int | None = None, *, for_client: bool = False) -> Path:
    """Write the report of run ``run_id`` (default: latest evaluation) to ``out``.
    ``for_client`` (the service): no path of the server's disk in it, photos
    relative to their data folder."""
    scored = load_scored(sessions, run_id)
    out = Path(out)
    if fmt == "csv":
        write_csv(scored, out, relative_paths(scored) if for_client else None)
    elif fmt == "json":
        doc = report_json(scored)
        if for_client:
            doc = doc | {"run": _without_paths(doc["run"]), "model": _without_paths(doc["model"])}
        write_text_atomic(out, json.dumps(doc, indent=2, default=str) + "\n")
    elif fmt == "html":
        write_html(scored, out)
    else:
        raise ReportError(f"unknown report format {fmt!r}; choose html, csv or json")
    return out
