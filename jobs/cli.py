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
    click.option("--augment", default="none", show_default=True, type=click.Choice(["none", "flip"]),
                 help="flip: also cache mirrored photos; each step uses one version at random."),
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
    from .cli_scores import _metric_table

    for line in _metric_table(result.evaluation):
        click.echo(line)
    click.echo(f"report: {result.report}")


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


# the other command groups register themselves on ``main``
from . import cli_gallery, cli_scores  # noqa: E402,F401
