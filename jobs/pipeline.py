"""The main job: train -> embed -> evaluate -> report, with sensible defaults."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from sqlalchemy.orm import Session, sessionmaker

from storage.workspace import Workspace
from verifier.defaults import DEFAULT_REPORT_FORMAT

from .embed import EmbedSummary, embed_gallery
from .evaluate import Evaluation, evaluate
from .models import load_model
from .report import write_report
from .train import TrainOptions, TrainResult, train


@dataclass
class PipelineResult:
    train: TrainResult
    embed: EmbedSummary
    evaluation: Evaluation
    report: Path


def run_pipeline(ws: Workspace, sessions: sessionmaker[Session], opts: TrainOptions, *,
                 report_format: str = DEFAULT_REPORT_FORMAT, report_path: Path | None = None,
                 quiet: bool = False,
                 echo: Callable[[str], None] = print) -> PipelineResult:
    """Train on ``opts.data`` (the threshold is calibrated there, on validation
    photos training never saw), embed it as the gallery, evaluate the test split at
    that threshold, and write a report into the workspace."""
    trained = train(ws, opts, quiet=quiet, echo=echo, database=sessions)
    loaded = load_model(ws, trained.name)
    summary = embed_gallery(ws, sessions, opts.data, loaded=loaded, quiet=quiet)
    for line in summary.lines():
        echo(line)
    result = evaluate(ws, sessions, loaded=loaded, quiet=quiet)
    out = report_path or ws.reports_dir / f"{trained.name}-run{result.run}.{report_format}"
    write_report(sessions, out, report_format, result.run)
    return PipelineResult(trained, summary, result, out)
