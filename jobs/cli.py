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
    def __init__(self, home: Path | None, quiet: bool) -> None:
        self.home = home
        self.quiet = quiet

    def workspace(self):
        from storage.workspace import Workspace

        return Workspace.open(self.home)


pass_ctx = click.make_pass_decorator(Context)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--home", type=click.Path(path_type=Path), envvar="VERIFIER_HOME",
              help="Workspace folder (database, models, indexes, reports). "
                   "Default: $VERIFIER_HOME or ~/.local/share/siamese-verifier.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.version_option(package_name="siamese-verifier")
@click.pass_context
def main(ctx: click.Context, home: Path | None, quiet: bool, verbose: int) -> None:
    """siamese-verifier: train a Siamese face network, embed a gallery, evaluate, query.

    \b
    Example:
      verifier train --data ../shared/data/seed-faces --backbone tiny --weights none
    """
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    ctx.obj = Context(home, quiet)


@main.command()
@click.option("--data", required=True, type=click.Path(path_type=Path, exists=True, file_okay=False),
              help="Folder laid out as DATA/<person>/<photo>.")
@click.option("--backbone", default="vgg19", show_default=True,
              type=click.Choice(["vgg19", "mobilenet_v2", "efficientnet_b0", "resnet50", "tiny"]),
              help="Feature extractor shared by both branches.")
@click.option("--weights", default="imagenet", show_default=True,
              help="imagenet (Keras download and cache), none (random), or PATH to a weights file.")
@click.option("--fine-tune", default=0.10, show_default=True, type=click.FloatRange(0, 1),
              help="Fraction of backbone layers left trainable (the rest is frozen and cached).")
@click.option("--image-size", type=click.IntRange(32, 1024),
              help="Input side in pixels [default: 224; 64 for tiny; the tutorial used 244].")
@click.option("--embedding-dim", default=64, show_default=True, type=click.IntRange(2, 4096))
@click.option("--margin", default=1.0, show_default=True, type=click.FloatRange(min=0, min_open=True),
              help="Contrastive loss margin.")
@click.option("--epochs", default=20, show_default=True, type=click.IntRange(1))
@click.option("--batch-size", default=32, show_default=True, type=click.IntRange(2),
              help="Photos per training step; every training pair among them is used.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of every random draw.")
@click.option("--protocol", default="seed", show_default=True,
              type=click.Choice(["seed", "image-disjoint", "identity-disjoint"]),
              help="How pairs are formed and split 70/20/10 into train/validation/test.")
@click.option("--patience", type=click.IntRange(1),
              help="Stop when validation loss has not improved for this many epochs [default: off].")
@click.option("--name", help="Name of the model version [default: BACKBONE-DATE-TIME].")
@click.option("--max-pixels", default=50_000_000, show_default=True, type=click.IntRange(1),
              help="Photos larger than this (width x height) are skipped.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_ctx
@friendly
def train(ctx: Context, data: Path, backbone: str, weights: str, fine_tune: float,
          image_size: int | None, embedding_dim: int, margin: float, epochs: int,
          batch_size: int, seed: int, protocol: str, patience: int | None, name: str | None,
          max_pixels: int, as_json: bool) -> None:
    """Train a Siamese network on a folder of face photos and save a model version.

    The frozen part of the backbone runs once per photo; only the trainable tail
    and the Dense head are trained. The model, its config, the pair splits and the
    loss history are saved in the workspace.

    \b
    Example:
      verifier train --data ./faces --backbone mobilenet_v2 --epochs 10
    """
    from .train import TrainOptions, train as run_train

    opts = TrainOptions(data=data, backbone=backbone, weights=weights, fine_tune=fine_tune,
                        image_size=image_size, embedding_dim=embedding_dim, margin=margin,
                        epochs=epochs, batch_size=batch_size, seed=seed, protocol=protocol,
                        patience=patience, name=name, max_pixels=max_pixels)
    echo = (lambda s: click.echo(s, err=True)) if as_json else click.echo
    result = run_train(ctx.workspace(), opts, quiet=ctx.quiet, echo=echo)
    if as_json:
        click.echo(json.dumps({"name": result.name, "path": str(result.path),
                               "pair_counts": result.pairs.counts(), "history": result.history,
                               "seconds": result.seconds}, indent=2))


if __name__ == "__main__":  # pragma: no cover
    main()
