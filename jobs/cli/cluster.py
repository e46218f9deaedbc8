"""``verifier cluster``: group the faces of unlabeled photos into people, show a
recorded run, and name a group (which enrolls it)."""
from __future__ import annotations

from pathlib import Path

import click

from verifier import defaults as d

from .context import MAX_FACES, MODEL, Context, emit_json, friendly, pass_ctx


class ClusterGroup(click.Group):
    """``verifier cluster PHOTOS...`` runs a clustering (``cluster run``); ``name``
    and ``show`` are subcommands (a folder named like one: ``cluster run ./name``)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        first = next((a for a in args if not a.startswith("-")), None)
        if first is not None and first not in self.commands and not {"-h", "--help"} & set(args[:args.index(first)]):
            args = ["run", *args]
        return super().parse_args(ctx, args)


@click.group(name="cluster", cls=ClusterGroup)
def cluster_cmd() -> None:
    """Group the faces of unlabeled photos into people, then name the groups.

    `verifier cluster PHOTOS...` (the same as `cluster run`) embeds every face of
    every photo (folders are searched; their sub-folder names are not labels),
    groups them and prints the groups, largest first, each with the gallery person
    it probably is. Name a group with `cluster name` to enroll its faces.

    \b
    Example:
      verifier cluster ./event-photos --html sheet.html
      verifier cluster name 1 0 "Ada Lovelace"
    """


@cluster_cmd.command(name="run")
@click.argument("photos", nargs=-1, required=True, type=click.Path(path_type=Path, exists=True))
@MODEL
@click.option("--threshold", type=click.FloatRange(0, min_open=True),
              help="Faces closer than this may be one person [default: the model's calibrated threshold].")
@click.option("--min-size", default=d.DEFAULT_MIN_SIZE, show_default=True, type=click.IntRange(1),
              help="Smaller groups are listed as unclustered.")
@click.option("--neighbours", default=d.DEFAULT_NEIGHBOURS, show_default=True, type=click.IntRange(1, 1000),
              help="Nearest neighbours each face is linked to (within the threshold).")
@MAX_FACES
@click.option("--algorithm", default=d.DEFAULT_CLUSTER_ALGORITHM, show_default=True,
              type=click.Choice(d.CLUSTER_ALGORITHMS),
              help="incremental: new faces join the groups of the last run as they arrive; "
                   "chinese-whispers: this run's faces grouped anew as a whole.")
@click.option("--regroup", is_flag=True,
              help="With --algorithm incremental: group this run's faces anew (by the same rule, "
                   "in the order given) instead of continuing the last run.")
@click.option("--enroll-named", is_flag=True,
              help="Enroll the new faces that joined a group you named (`cluster name`) as that "
                   "person, with the vectors of this run (the quality floor applies).")
@click.option("--html", "html_path", type=click.Path(path_type=Path, dir_okay=False),
              help="Also write a contact sheet: a row of face thumbnails per group.")
@click.option("--json", "as_json", is_flag=True, help="Print the run as one JSON document.")
@pass_ctx
@friendly
def cluster_run(ctx: Context, photos: tuple[Path, ...], model: str | None, threshold: float | None,
                min_size: int, neighbours: int, max_faces: int, algorithm: str, regroup: bool,
                enroll_named: bool, html_path: Path | None, as_json: bool) -> None:
    """Group every face of PHOTOS (files or folders) into people.

    Faces are embedded once per photo content (a rerun on a grown folder embeds
    only the new photos). By default the groups grow: the faces of the model's
    last run keep their groups and names, and each new face joins the group its
    nearest faces within the threshold vote for, or starts one; `--regroup` starts
    afresh; `--enroll-named` enrolls the new faces of groups you named. The run is
    recorded: `cluster show RUN` prints it again.

    \b
    Example:
      verifier cluster ./unsorted --html sheet.html
      verifier cluster ./unsorted --json > groups.json
    """
    from ..cluster import cluster_photos, photo_items
    from ..live import Verifier
    from ..progress import bar

    items = photo_items(photos)
    if not items:
        raise click.ClickException("no photos found in " + ", ".join(str(p) for p in photos))
    sessions = ctx.database()
    verifier = Verifier.open(ctx.workspace(), sessions, model)
    with bar(len(items), "faces", quiet=ctx.quiet or as_json) as progress:
        run = cluster_photos(ctx.workspace(), sessions, items, verifier=verifier, threshold=threshold,
                             min_size=min_size, neighbours=neighbours, max_faces=max_faces,
                             on_progress=lambda done, _: progress.update(done - progress.n),
                             algorithm=algorithm, regroup=regroup)
    if not enroll_named:
        _print(run, as_json, html_path)
        return
    from ..cluster import enroll_named as enroll

    named = enroll(sessions, verifier, run)
    if as_json:
        emit_json(dict(run.as_dict(), enrolled=[n.as_dict() for n in named]))
        return
    _print(run, False, html_path)
    for n in named:
        for line in n.lines():
            click.echo(line)


@cluster_cmd.command(name="show")
@click.argument("run_id", metavar="RUN", type=click.IntRange(1))
@click.option("--html", "html_path", type=click.Path(path_type=Path, dir_okay=False),
              help="Also write the run's contact sheet.")
@click.option("--json", "as_json", is_flag=True, help="Print the run as one JSON document.")
@pass_ctx
@friendly
def cluster_show(ctx: Context, run_id: int, html_path: Path | None, as_json: bool) -> None:
    """Print recorded cluster run RUN (or its progress, while it runs).

    \b
    Example:
      verifier cluster show 3 --html sheet.html
    """
    from ..cluster import load_run

    _print(load_run(ctx.database(), run_id), as_json, html_path)


@cluster_cmd.command(name="name")
@click.argument("run_id", metavar="RUN", type=click.IntRange(1))
@click.argument("group", type=click.IntRange(0))
@click.argument("name", required=False)
@click.option("--merge-into", metavar="NAME",
              help="Add the group's faces to this existing person instead of a new one.")
@click.option("--min-quality", default=d.DEFAULT_MIN_QUALITY, show_default=True, type=click.FloatRange(0, 1),
              help="Leave out faces of a lower quality (listed as skipped).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_ctx
@friendly
def cluster_name(ctx: Context, run_id: int, group: int, name: str | None, merge_into: str | None,
                 min_quality: float, as_json: bool) -> None:
    """Enroll group GROUP of cluster run RUN as a new person NAME (or into an
    existing person with --merge-into NAME). The faces' vectors from the run are
    stored; nothing is embedded again. Every server sees the new photos.

    \b
    Example:
      verifier cluster name 1 0 "Ada Lovelace"
      verifier cluster name 1 4 --merge-into "Ada Lovelace"
    """
    from ..cluster import load_run, name_group
    from ..live import Verifier

    if (name is None) == (merge_into is None):
        raise click.UsageError("give either NAME (a new person) or --merge-into NAME (an existing one)")
    sessions = ctx.database()
    run = load_run(sessions, run_id)
    verifier = Verifier.open(ctx.workspace(), sessions, run.model, min_quality=min_quality)
    named = name_group(sessions, verifier, run_id, group, name or merge_into, merge=merge_into is not None)
    verifier.close()
    if as_json:
        emit_json(named.as_dict())
    else:
        for line in named.lines():
            click.echo(line)


def _print(run, as_json: bool, html_path: Path | None) -> None:
    from storage.schema import RunStatus

    if html_path is not None and run.status == RunStatus.DONE:
        from ..cluster_sheet import write_sheet

        write_sheet(run, html_path)
    if as_json:
        emit_json(run.as_dict())
        return
    for line in run.lines():
        click.echo(line)
    if html_path is not None and run.status == RunStatus.DONE:
        click.echo(f"contact sheet: {html_path}")


COMMANDS = [cluster_cmd]
