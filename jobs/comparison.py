"""Reports that compare evaluation runs: curves on the same axes and the metrics side
by side, with a check that the runs scored the same pairs."""
from __future__ import annotations

import csv
import html
import io
import json
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from storage.files import write_text_atomic
from verifier import plots

from .evaluate import overlap_warning
from .report import ReportError, ScoredPairs, fmt_metric, img_tag, load_scored

COLUMNS = ["run", "model", "backbone", "protocol", "split", "pairs", "threshold", "accuracy",
           "balanced_accuracy", "far", "frr", "roc_auc", "eer", "tar_at_far_1e-2",
           "tar_at_far_1e-3", "kfold_mean", "kfold_std"]


def row(s: ScoredPairs) -> dict:
    counts, m = s.run["counts"], s.run["counts"]["metrics"]
    folds = counts.get("folds") or {}
    return {"run": s.run["id"], "model": s.model["name"], "backbone": s.model["backbone"],
            "protocol": counts.get("protocol") or s.model["config"].get("protocol"),
            "split": s.run["params"].get("split"), "pairs": m["pairs"], "threshold": s.threshold,
            **{k: m.get(k) for k in COLUMNS[7:15]},
            "kfold_mean": folds.get("mean"), "kfold_std": folds.get("std")}


def pairs_note(runs: list[ScoredPairs]) -> tuple[bool, str]:
    """Whether every run scored the same pairs, and a sentence that says so (or how
    they differ)."""
    keys = [set(zip(s.path_a, s.path_b, s.labels.tolist())) for s in runs]
    if all(k == keys[0] for k in keys):
        return True, f"All runs scored the same {len(keys[0])} pairs."
    common = set.intersection(*keys)
    sizes = ", ".join(f"run {s.run['id']}: {len(k)}" for s, k in zip(runs, keys))
    return False, (f"The runs scored different pairs ({sizes}; {len(common)} in common): their "
                   "figures are not directly comparable.")


def write_comparison(sessions: sessionmaker[Session], out: Path, fmt: str,
                     run_ids: list[int]) -> Path:
    """Write a comparison of evaluation runs ``run_ids`` (two or more) to ``out``."""
    runs = [load_scored(sessions, r) for r in run_ids]
    rows = [row(s) for s in runs]
    same, note = pairs_note(runs)
    out = Path(out)
    if fmt == "json":
        write_text_atomic(out, json.dumps({"runs": rows, "same_pairs": same, "note": note},
                                          indent=2, default=str) + "\n")
    elif fmt == "csv":
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows(rows)
        write_text_atomic(out, buf.getvalue())
    elif fmt == "html":
        write_text_atomic(out, comparison_html(runs, rows, same, note))
    else:
        raise ReportError(f"unknown report format {fmt!r}; choose html, csv or json")
    return out


def comparison_html(runs: list[ScoredPairs], rows: list[dict], same: bool, note: str) -> str:
    labels = [f"run {r['run']}: {r['model']}" for r in rows]
    roc, det = plots.comparison_pngs([(lab, s.distances, s.labels) for lab, s in zip(labels, runs)])
    head = "".join(f"<th scope='col'>{html.escape(lab)}</th>" for lab in labels)
    body = "".join(f"<tr><th scope='row'>{c}</th>" + "".join(f"<td>{fmt_metric(r[c])}</td>" for r in rows)
                   + "</tr>" for c in COLUMNS[1:])
    warnings = "".join(
        f"<p class='warn'>Run {r['run']}: {html.escape(w)}.</p>"
        for r, s in zip(rows, runs) if (w := overlap_warning(s.run["counts"].get("overlap"))))
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Comparison of runs {', '.join(str(r['run']) for r in rows)}</title>
<style>body {{ font-family: system-ui, sans-serif; max-width: 70em; margin: 1em auto; padding: 0 1em; }}
table {{ border-collapse: collapse; }} th, td {{ border: 1px solid #ccc; padding: .25em .6em; text-align: right; }}
th[scope=row] {{ text-align: left; }} .warn {{ border: 2px solid #b3261e; background: #fdecea; padding: .5em; }}
.{'ok' if same else 'warn'} {{ font-weight: 600; }}</style></head><body>
<h1>Comparison of evaluation runs</h1>
<p class="{'ok' if same else 'warn'}">{html.escape(note)}</p>
{warnings}
<h2>Curves</h2>
{img_tag(roc, "ROC curves of the runs on the same axes")}
{img_tag(det, "DET curves of the runs on the same axes")}
<h2>Metrics</h2>
<table><thead><tr><th></th>{head}</tr></thead><tbody>{body}</tbody></table>
</body></html>
"""
