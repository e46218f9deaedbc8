"""The ``verifier`` command line: thin wrappers over the ``jobs`` functions."""
from __future__ import annotations

import faulthandler
import logging
from pathlib import Path
from typing import Any, Callable

import click

from verifier import defaults as d

from .context import Context, emit_json, friendly, pass_ctx

TENSORFLOW_COMMANDS = frozenset({"train", "pipeline"})
"""Commands that load TensorFlow (quietly, at start). Inference runs on ONNX Runtime;
a model version saved before ONNX exports loads it once, to export itself."""


class AnywhereGroup(click.Group):
    """A group whose own options may also follow the subcommand:
    ``verifier embed --home X`` means ``verifier --home X embed``."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, hoist_global_options(self, args))


def hoist_global_options(group: click.Group, args: list[str]) -> list[str]:
    """Move the group's options that appear after the first subcommand in front of
    it (a ``--`` ends the search; option values stay with their option)."""
    names = {}
    for param in group.params:
        if isinstance(param, click.Option):
            for opt in param.opts + param.secondary_opts:
                names[opt] = not (param.is_flag or param.count)
    first = next((i for i, a in enumerate(args) if a in group.commands), None)
    if first is None:
        return args
    head, tail, moved = list(args[:first]), [], []
    rest = args[first:]
    i = 0
    while i < len(rest):
        arg = rest[i]
        if arg == "--":
            tail += rest[i:]
            break
        name = arg.split("=", 1)[0]
        short_flags = arg.startswith("-") and not arg.startswith("--") and len(arg) > 2 \
            and all(f"-{c}" in names and not names[f"-{c}"] for c in arg[1:])
        if name in names or short_flags:
            moved.append(arg)
            if name in names and names[name] and "=" not in arg and i + 1 < len(rest):
                moved.append(rest[i + 1])
                i += 1
        else:
            tail.append(arg)
        i += 1
    return head + moved + tail


@click.group(cls=AnywhereGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--home", type=click.Path(path_type=Path), envvar="VERIFIER_HOME",
              help="Workspace folder (database, models, indexes, reports). "
                   "Default: $VERIFIER_HOME or ~/.local/share/siamese-verifier.")
@click.option("--db-url", envvar="VERIFIER_DB_URL",
              help="SQLAlchemy database URL [default: SQLite file in the workspace]; "
                   "e.g. postgresql://user@host/db for shared or large galleries.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
@click.option("-v", "--verbose", count=True,
              help="More log output (-vv for debug); also shows TensorFlow's start-up lines.")
@click.version_option(package_name="siamese-verifier")
@click.pass_context
def main(ctx: click.Context, home: Path | None, db_url: str | None, quiet: bool,
         verbose: int) -> None:
    """siamese-verifier: train a Siamese face network, embed a gallery, evaluate, query.

    The options below may come before or after the command
    (`verifier --home X embed ...` = `verifier embed --home X ...`).

    \b
    Example:
      verifier train --data ../shared/data/seed-faces --backbone tiny --weights none
    """
    # a native crash (TensorFlow, FAISS) prints the Python stack instead of dying silently
    if not faulthandler.is_enabled():
        try:
            faulthandler.enable()
        except (OSError, ValueError, AttributeError):  # stderr without a file descriptor
            pass
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    ctx.obj = Context(home, quiet, db_url)
    if ctx.invoked_subcommand in TENSORFLOW_COMMANDS and not ctx.resilient_parsing:
        from ..quiet import start_tensorflow

        start_tensorflow(verbose)


TRAIN_OPTIONS = [
    click.option("--data", required=True, type=click.Path(path_type=Path, exists=True, file_okay=False),
                 help="Folder laid out as DATA/<person>/<photo>."),
    click.option("--backbone", default=d.DEFAULT_BACKBONE, show_default=True,
                 type=click.Choice(d.BACKBONE_NAMES),
                 help="Feature extractor shared by both branches."),
    click.option("--weights", default="default",
                 help="imagenet (Keras download and cache), none (random), or PATH to a weights "
                      "file [default: imagenet; dlib's own file for dlib-resnet; none for tiny]."),
    click.option("--head", type=click.Choice(d.HEADS),
                 help="adapter: a linear layer on the backbone's embedding, started at the "
                      "identity and pulled toward it; dense: pooling + a new Dense(--embedding-dim) "
                      "(the tutorial); none: the backbone's output is the embedding "
                      "[default: adapter for dlib-resnet, dense otherwise]."),
    click.option("--detector", default=d.DEFAULT_DETECTOR, show_default=True,
                 type=click.Choice(d.DETECTORS),
                 help="mtcnn-fast: detect the faces with MTCNN (the mtcnn package's pyramid "
                      "without its finest level, from 28 px; a face mostly inside a surer one "
                      "dropped) and align the most prominent, in about 65% of the time of mtcnn "
                      "with the same faces found (docs/benchmarks.md); mtcnn: the package's own "
                      "settings (from 20 px), face for face; mtcnn-30px: the package's from 30 "
                      "px; yunet: YuNet finds the faces in one pass (OpenCV's model zoo, weights "
                      "pinned by SHA-256), MTCNN's ONet places their landmarks, in about a third "
                      "of mtcnn-fast's time (docs/cli.md); none: the whole photo (the "
                      "tutorial). Recorded in the model; every later command uses it."),
    click.option("--face-padding", default=d.DEFAULT_PADDING, show_default=True, type=click.FloatRange(0, 2),
                 help="Margin around the aligned face, as a fraction of the face template."),
    click.option("--require-face", is_flag=True,
                 help="Skip photos without a detected face instead of using the whole photo."),
    click.option("--augment", type=click.Choice(d.AUGMENTATIONS),
                 help="flip: also cache mirrored photos; degrade: mirrored and degraded ones "
                      "(grayscale, side light, small, JPEG, blur, eye band); each step uses one "
                      "version of each photo at random [default: degrade for dlib-resnet, none "
                      "otherwise]."),
    click.option("--tta", default=d.DEFAULT_TTA, show_default=True, type=click.Choice(d.TTA),
                 help="flip: embed each face and its mirror and average (fewer errors on hard and "
                      "clean photos); none: once, faster. Recorded in the model; every later "
                      "command uses it."),
    click.option("--fine-tune", type=click.FloatRange(0, 1),
                 help="Fraction of backbone layers left trainable (the rest is frozen and cached) "
                      "[default: 0 for dlib-resnet, 0.10 otherwise]."),
    click.option("--hard-negatives", type=click.IntRange(0),
                 help="Negative pairs kept per positive in each step, the hardest ones; 0 uses "
                      "every pair (the tutorial) [default: 4 for dlib-resnet, 0 otherwise]."),
    click.option("--target-far", default=d.TARGET_FAR, show_default=True,
                 type=click.FloatRange(0, 1, min_open=True),
                 help="False-accept rate (per pair) the threshold is calibrated for, on "
                      "validation photos training never saw."),
    click.option("--keep-trained", is_flag=True,
                 help="Save the trained model even when it is not better than the starting "
                      "network on validation."),
    click.option("--image-size", type=click.IntRange(32, 1024),
                 help="Input side in pixels [default: 224; 64 for tiny; 150 for dlib-resnet; "
                      "the tutorial used 244]."),
    click.option("--embedding-dim", default=d.DEFAULT_EMBEDDING_DIM, show_default=True, type=click.IntRange(2, 4096)),
    click.option("--margin", type=click.FloatRange(min=0, min_open=True),
                 help="Contrastive loss margin: different people are pushed this far apart "
                      f"[default: {d.FACE_MARGIN} for dlib-resnet, about its own distance between "
                      f"different people; {d.DEFAULT_MARGIN} otherwise, the tutorial's]."),
    click.option("--epochs", default=d.DEFAULT_EPOCHS, show_default=True, type=click.IntRange(1)),
    click.option("--batch-size", default=d.DEFAULT_BATCH_SIZE, show_default=True, type=click.IntRange(2),
                 help="Photos per training step; every training pair among them is used."),
    click.option("--seed", default=d.DEFAULT_SEED, show_default=True, type=int, help="Seed of every random draw."),
    click.option("--protocol", default=d.DEFAULT_PROTOCOL, show_default=True,
                 type=click.Choice(d.PROTOCOLS),
                 help="How photos and pairs are split into train/validation/test: open-set "
                      "(no photo in two splits, a fifth of the people held out of training), "
                      "seed (the tutorial's: pairs shared photos), image-disjoint, identity-disjoint."),
    click.option("--patience", type=click.IntRange(1),
                 help="Stop when validation loss has not improved for this many epochs [default: off]."),
    click.option("--name", help="Name of the model version [default: BACKBONE-DATE-TIME]."),
    click.option("--max-pixels", default=d.DEFAULT_MAX_PIXELS, show_default=True, type=click.IntRange(1),
                 help="Photos larger than this (width x height) are skipped."),
]


def train_options(func: Callable) -> Callable:
    for option in reversed(TRAIN_OPTIONS):
        func = option(func)
    return func


def _train_opts(kwargs: dict):
    from ..train import TrainOptions

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
    and the head are trained (for dlib-resnet an adapter that starts as the face
    network's own embedding). The trained model is compared with the network it
    started from on validation photos training never saw and saved only when
    better (else the starting network is, unless --keep-trained); the threshold
    is calibrated there at --target-far. The model, its config, the pair splits
    and the loss history are saved in the workspace.

    \b
    Example:
      verifier train --data ./faces --backbone dlib-resnet
      verifier train --data ./faces --backbone vgg19 --protocol seed   # the tutorial
    """
    from ..train import train as run_train

    echo = (lambda s: click.echo(s, err=True)) if as_json else click.echo
    result = run_train(ctx.workspace(), _train_opts(kwargs), quiet=ctx.quiet, echo=echo,
                       database=ctx.database())
    if as_json:
        emit_json({"name": result.name, "path": str(result.path),
                   "pair_counts": result.pairs.counts(), "history": result.history,
                   "seconds": result.seconds, "selection": result.selection,
                   "threshold": result.threshold, "threshold_rule": result.threshold_rule})


@main.command()
@train_options
@click.option("--format", "fmt", default=d.DEFAULT_REPORT_FORMAT, show_default=True,
              type=click.Choice(d.REPORT_FORMATS), help="Report format.")
@pass_ctx
@friendly
def pipeline(ctx: Context, fmt: str, **kwargs: Any) -> None:
    """Train, embed the gallery, evaluate the test pairs and write a report.

    Takes every option of `verifier train`. Prints the evaluation table and where
    the report is.

    \b
    Example:
      verifier pipeline --data ../shared/data/seed-faces --backbone tiny --weights none
    """
    from ..pipeline import run_pipeline

    result = run_pipeline(ctx.workspace(), ctx.database(), _train_opts(kwargs),
                          report_format=fmt, quiet=ctx.quiet,
                          echo=click.echo)
    from .scores import metric_table

    for line in metric_table(result.evaluation):
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
@click.argument("name", type=click.Choice(d.DATASETS))
@click.option("--to", "dest", type=click.Path(path_type=Path, file_okay=False),
              help="Destination folder [default: HOME/datasets/NAME].")
@click.option("--url", "base_url", help="Base URL to download from [default: the official one].")
@pass_ctx
@friendly
def fetch(ctx: Context, name: str, dest: Path | None, base_url: str | None) -> None:
    """Download a data set, checking every file against its published checksum.

    seed-faces: the tutorial's 128 photos (pinned commit, SHA-256 each). lfw: LFW's
    images (lfw.tgz, unpacked into DEST/lfw) and its pair lists (pairs.txt,
    pairsDevTrain.txt, pairsDevTest.txt), MD5-checked as LFW publishes them. Files
    already present and correct are kept; an interrupted transfer resumes. Offline,
    it fails with a message on how to use a local copy instead.

    \b
    Example:
      verifier datasets fetch seed-faces --to ./seed-faces
      verifier datasets fetch lfw --to ./lfw
    """
    from .. import datasets as ds

    dest = dest or ctx.workspace().root / "datasets" / name
    if name == "lfw":
        summary = ds.fetch_lfw(dest, base_url=base_url or ds.LFW_URL, quiet=ctx.quiet)
        click.echo(f"lfw: {len(summary.downloaded)} downloaded ({summary.resumed} resumed), "
                   f"{summary.present} already present, in {summary.folder}; evaluate with "
                   f"`verifier evaluate --pairs {dest / 'pairs.txt'} --data {dest / 'lfw'}`")
        return
    summary = ds.fetch_seed_faces(dest, base_url=base_url or ds.SEED_FACES_URL, quiet=ctx.quiet)
    click.echo(f"{name}: {len(summary.downloaded)} downloaded ({summary.resumed} resumed), "
               f"{summary.present} already present, in {summary.folder}")


def _register() -> None:
    from . import cluster, gallery, scores, service

    for module in (cluster, gallery, scores, service):
        for command in module.COMMANDS:
            main.add_command(command)


_register()


def program() -> None:
    """The ``verifier`` program (``python -m jobs`` and the installed script):
    :func:`main`, then an exit that skips the interpreter's last garbage collections.
    Those walk every object the command made only to free memory the operating
    system takes back anyway: a quarter of a second of an unchanged ``embed`` here.
    Files, databases and Ray are closed by the commands themselves and by ``atexit``
    handlers, which still run; only memory is left to the operating system."""
    import gc

    try:
        main()
    finally:
        gc.freeze()
