"""``verifier embed``, ``gallery`` and ``doctor``: the gallery commands."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from verifier import defaults as d

from ..engines import ENGINES
from .context import MODEL, Context, emit_json, friendly, pass_ctx


@click.command()
@click.option("--data", required=True, type=click.Path(path_type=Path, exists=True, file_okay=False),
              help="Gallery folder laid out as DATA/<person>/<photo>.")
@MODEL
@click.option("--batch-size", default=d.DEFAULT_EMBED_BATCH_SIZE, show_default=True, type=click.IntRange(1))
@click.option("--prune", is_flag=True, help="Remove photos that are gone from the folder.")
@click.option("--restore-removed", is_flag=True,
              help="Bring back photos of the folder that were removed from the gallery on "
                   "request (DELETE, the page); without it they stay out, and are counted.")
@click.option("--wait", is_flag=True, help="Wait for another running embed instead of failing.")
@click.option("--index-factory", help="FAISS factory string, e.g. HNSW32 or IVF1024,Flat "
                                      "[default: Flat, exact].")
@click.option("--max-pixels", default=d.DEFAULT_MAX_PIXELS, show_default=True, type=click.IntRange(1))
@click.option("--engine", default="local", show_default=True, type=click.Choice(ENGINES),
              help="local: this process; ray: Ray actors (pip install 'siamese-verifier[ray]').")
@click.option("--ray-address", help="With --engine ray: an existing cluster (auto, ray://host:10001) "
                                    "[default: start a local Ray for this run].")
@click.option("--workers", type=click.IntRange(1), help="With --engine ray: model workers, each "
              "using an equal share of the CPUs [default: one per CPU].")
@click.option("--min-quality", default=d.DEFAULT_MIN_QUALITY, show_default=True,
              type=click.FloatRange(0, 1), help="Skip photos whose face quality is lower (recorded "
              "with the reason, e.g. 'poor_quality: face 38 px wide'); 0 takes every face.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@pass_ctx
@friendly
def embed(ctx: Context, data: Path, model: str | None, batch_size: int, prune: bool,
          restore_removed: bool, wait: bool,
          index_factory: str | None, max_pixels: int, engine: str, ray_address: str | None,
          workers: int | None, min_quality: float, as_json: bool) -> None:
    """Embed every photo of a gallery folder into the model's FAISS index.

    Content-addressed: unchanged photos cost no model call, moved ones only have
    their path updated, changed ones are embedded again. Bad files are recorded
    and skipped. Safe to interrupt and run again.

    \b
    Example:
      verifier embed --data ./faces --model vgg19-20260101-120000
    """
    from ..embed import embed_gallery

    summary = embed_gallery(ctx.workspace(), ctx.database(), data, model=model,
                            batch_size=batch_size, prune=prune, wait=wait,
                            index_factory=index_factory, max_pixels=max_pixels, quiet=ctx.quiet,
                            engine=engine, ray_address=ray_address, workers=workers,
                            min_quality=min_quality, restore_removed=restore_removed)
    if as_json:
        emit_json(summary.as_dict())
    else:
        for line in summary.lines():
            click.echo(line)


@click.group(name="gallery", invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_ctx
@click.pass_context
@friendly
def gallery_cmd(click_ctx: click.Context, ctx: Context, as_json: bool) -> None:
    """List the gallery: identities with photo counts, models with embedded counts.
    Subcommands change it.

    \b
    Example:
      verifier gallery --json
      verifier gallery rename "Barak Obama" "Barack Obama"
    """
    if click_ctx.invoked_subcommand is not None:
        return
    from storage.gallery import identity_counts
    from storage.models import model_counts

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


@gallery_cmd.command(name="rename")
@click.argument("old")
@click.argument("new")
@click.option("--merge", is_flag=True,
              help="When NEW is already a person, move OLD's photos to them (else refused).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_ctx
@friendly
def gallery_rename(ctx: Context, old: str, new: str, merge: bool, as_json: bool) -> None:
    """Rename person OLD to NEW, or merge OLD into NEW with --merge. Running
    servers pick the change up from the database's change log.

    \b
    Example:
      verifier gallery rename "Barak Obama" "Barack Obama"
      verifier gallery rename obama_2 obama --merge
    """
    from storage.gallery import identity_name

    from ..live import rename_identity

    photos = rename_identity(ctx.database(), old, new, merge=merge)
    if as_json:
        emit_json({"old": identity_name(old), "name": identity_name(new), "photos": photos,
                   "merged": merge})
    else:
        click.echo(f"{identity_name(old)} -> {identity_name(new)}: {photos} photos")


@gallery_cmd.command(name="remove")
@click.argument("name")
@click.option("--model", help="Model version whose index is updated at once [default: the most recent].")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_ctx
@friendly
def gallery_remove(ctx: Context, name: str, model: str | None, as_json: bool) -> None:
    """Remove person NAME and every photo of theirs from the gallery (as
    `DELETE /v1/identities/NAME` does). Photos of a gallery folder stay out of later
    embeds of it until `verifier embed --restore-removed`; running servers follow.

    \b
    Example:
      verifier gallery remove meryl_streep
      verifier embed --data ./faces --restore-removed    # bring them back
    """
    from storage.gallery import identity_name

    from ..live import Verifier

    with Verifier.open(ctx.workspace(), ctx.database(), model) as verifier:
        removed = verifier.remove_identity(name)
    if as_json:
        emit_json({"name": identity_name(name), "removed_photos": removed.photos})
    else:
        click.echo(f"{identity_name(name)}: {removed.photos} photos removed from the gallery "
                   "(bring a folder's back with `verifier embed --data DIR --restore-removed`)")


def _face_choice(value: str | None) -> int | str | tuple[float, ...] | None:
    """``--face``: N (0 is the largest), ``largest``, or a box ``LEFT,TOP,WIDTH,HEIGHT``."""
    from ..answers import LARGEST

    if value is None or value == LARGEST:
        return value
    parts = value.split(",")
    try:
        if len(parts) == 1 and int(parts[0]) >= 0:
            return int(parts[0])
        if len(parts) == 4:
            box = tuple(float(p) for p in parts)
            if box[2] > 0 and box[3] > 0:
                return box
    except ValueError:
        pass
    raise click.BadParameter(f"{value!r}: give N (0 is the largest face), 'largest' or a box "
                             "LEFT,TOP,WIDTH,HEIGHT", param_hint="--face")


@gallery_cmd.command(name="enroll")
@click.argument("name")
@click.argument("photos", nargs=-1, required=True,
                type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--face", "face", help="Which face of each photo is NAME: N (0 is the largest), 'largest', "
              "or a box LEFT,TOP,WIDTH,HEIGHT (as `verifier detect` prints). Without it a photo "
              "with several faces is refused and its faces are listed.")
@MODEL
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_ctx
@friendly
def gallery_enroll(ctx: Context, name: str, photos: tuple[Path, ...], face: str | None, model: str | None,
                   as_json: bool) -> None:
    """Enroll PHOTOS as person NAME (created when new): one face of each photo
    joins the gallery, all or nothing. A group photo is enrolled face by face: run
    it once per person with --face; each face is an entry of its own, and the
    photo's file is kept once. Running servers follow.

    \b
    Example:
      verifier gallery enroll obama obama1.jpg obama2.jpg
      verifier gallery enroll lula group.png --face 0
      verifier gallery enroll messi group.png --face 1
    """
    from verifier.errors import SeveralFaces
    from verifier.images import read_photo_bytes

    from ..live import Verifier

    choice = _face_choice(face)
    items = [(p.name, read_photo_bytes(p)) for p in photos]
    with Verifier.open(ctx.workspace(), ctx.database(), model) as verifier:
        try:
            done = verifier.enroll_many(name, items, face=choice)
        except SeveralFaces as exc:
            listed = "; ".join(f"face {i} at {','.join(map(str, box))}" for i, box in enumerate(exc.boxes))
            raise click.ClickException(
                f"{photos[exc.photo]} holds {len(exc.boxes)} faces; say which one is {name} with "
                f"--face N (0 is the largest) or --face largest: {listed}") from None
    if as_json:
        emit_json({"identity": done[0].identity if done else name,
                   "photos": [{"photo": str(p), "photo_id": e.photo_id, "face_index": e.face_index,
                               "box": e.box, "created": e.created} for p, e in zip(photos, done)]})
        return
    for p, e in zip(photos, done):
        box = f" at {','.join(map(str, e.box))}" if e.box else ""
        state = "enrolled" if e.created else "already enrolled"
        click.echo(f"{p} face {e.face_index}{box} -> {e.identity}: {state} (entry {e.photo_id})")


@gallery_cmd.command(name="show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_ctx
@friendly
def gallery_show(ctx: Context, name: str, as_json: bool) -> None:
    """List the faces of person NAME: each entry's id, its photo and face, and the
    other people its photo shows (a group photo).

    \b
    Example:
      verifier gallery show lula
    """
    from storage.gallery import identity_faces, identity_name

    from ..errors import IdentityNotFound

    name = identity_name(name)
    with ctx.database()() as session:
        faces = [{"photo_id": r.id, "photo": r.source or r.path, "face_index": r.face, "box": r.face_box,
                  "quality": r.quality,
                  "others": [{"photo_id": o.id, "face_index": o.face, "identity": o.identity} for o in others]}
                 for r, others in identity_faces(session, name)]
    if not faces:
        raise IdentityNotFound(f"no identity {name!r} in the gallery")
    if as_json:
        emit_json({"name": name, "faces": faces})
        return
    click.echo(f"{name}: {len(faces)} faces")
    for f in faces:
        with_ = ", ".join(f"{o['identity']} (face {o['face_index']})" for o in f["others"])
        click.echo(f"  entry {f['photo_id']:>6}  face {f['face_index']}  {f['photo']}"
                   + (f"  with {with_}" if with_ else ""))


@gallery_cmd.command(name="move")
@click.argument("entry", type=click.IntRange(1))
@click.argument("name")
@MODEL
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_ctx
@friendly
def gallery_move(ctx: Context, entry: int, name: str, model: str | None, as_json: bool) -> None:
    """Give the face of gallery entry ENTRY (`verifier gallery show`) to person NAME
    (created when new); the other faces of its photo keep their people.

    \b
    Example:
      verifier gallery move 17 messi
    """
    from storage.gallery import identity_name

    from ..live import Verifier

    with Verifier.open(ctx.workspace(), ctx.database(), model) as verifier:
        verifier.move_face(entry, name)
    if as_json:
        emit_json({"photo_id": entry, "identity": identity_name(name)})
    else:
        click.echo(f"entry {entry} -> {identity_name(name)}")


@gallery_cmd.command(name="remove-face")
@click.argument("entry", type=click.IntRange(1))
@click.option("--every-face", is_flag=True, help="Every face of the entry's photo, not only this one.")
@MODEL
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_ctx
@friendly
def gallery_remove_face(ctx: Context, entry: int, every_face: bool, model: str | None, as_json: bool) -> None:
    """Take the face of gallery entry ENTRY out of the gallery (as `DELETE
    /v1/photos/ENTRY` does), or every face of its photo with --every-face.

    \b
    Example:
      verifier gallery remove-face 17
    """
    from ..live import Verifier

    with Verifier.open(ctx.workspace(), ctx.database(), model) as verifier:
        removed = verifier.remove_photo(entry, every_face=every_face)
    if as_json:
        emit_json({"removed_photos": removed.photos})
    else:
        click.echo(f"{removed.photos} face{'s' * (removed.photos != 1)} removed from the gallery")


@gallery_cmd.command(name="check")
@MODEL
@click.option("--json", "as_json", is_flag=True, help="Print the pairs as JSON.")
@pass_ctx
@friendly
def gallery_check(ctx: Context, model: str | None, as_json: bool) -> None:
    """List pairs of people who look alike to the model: a photo of one comes within the
    threshold (and a margin) of a photo of the other (siblings, a parent and a child,
    one person under two names), with the photos that bridge them. Nothing is
    changed; names stay apart until you merge them.

    \b
    Example:
      verifier gallery check
      verifier gallery rename "Bob Smith" "Robert Smith" --merge   # the same person after all
    """
    from ..live import Verifier
    from ..lookalikes import check_gallery

    with Verifier.open(ctx.workspace(), ctx.database(), model) as verifier:
        checked = check_gallery(verifier)
    if as_json:
        emit_json(checked.as_dict())
    else:
        for line in checked.lines():
            click.echo(line)


@click.command()
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
    from ..doctor import check_workspace

    report = check_workspace(ctx.workspace(), ctx.database(), repair=repair)
    if as_json:
        emit_json({"healthy": report.healthy, "problems": report.problems, "notes": report.notes,
                   "repaired": report.repaired, "checked": report.checked})
    else:
        for line in report.repaired:
            click.echo(f"repaired: {line}")
        for line in report.problems:
            click.echo(f"problem: {line}")
        for line in report.notes:
            click.echo(f"note: {line}")
        if report.healthy:
            click.echo(f"ok: {report.checked['models']} models, {report.checked['photos']} photos; "
                       "database, indexes and files agree")
    if not report.healthy:
        sys.exit(1)


@click.group()
def index() -> None:
    """The FAISS index of a model: build it anew (any type), or describe it.

    \b
    Example:
      verifier index build --factory IVF4096,PQ32 --train-sample 200000
      verifier index info
    """


@index.command("build")
@MODEL
@click.option("--factory", "index_factory", required=True,
              help="FAISS factory string: Flat, HNSW32, IVF4096,Flat, IVF65536,PQ32, "
                   "OPQ32,IVF65536,PQ32 ...")
@click.option("--train-sample", default=d.DEFAULT_TRAIN_SAMPLE, show_default=True, type=click.IntRange(1),
              help="Vectors a type that needs training is trained on (a seeded random sample).")
@click.option("--wait", is_flag=True, help="Wait for a running embed instead of failing.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_ctx
@friendly
def index_build(ctx: Context, model: str | None, index_factory: str, train_sample: int, wait: bool,
                as_json: bool) -> None:
    """Build the model's index from the stored vectors, streamed in chunks, and swap it in.

    Approximate types are re-ranked at search time by the exact stored vectors.
    A server that runs keeps its loaded index until it restarts.

    \b
    Example:
      verifier index build --factory IVF65536,PQ32 --train-sample 262144
    """
    from ..indexes import build

    report = build(ctx.workspace(), ctx.database(), model=model, index_factory=index_factory,
                   train_sample=train_sample, wait=wait)
    _print_index(report, as_json)


@index.command("info")
@MODEL
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_ctx
@friendly
def index_info(ctx: Context, model: str | None, as_json: bool) -> None:
    """Type, vectors, size of the model's index, and the database state it reflects.

    \b
    Example:
      verifier index info --json
    """
    from ..indexes import info

    _print_index(info(ctx.workspace(), ctx.database(), model=model), as_json)


def _print_index(report, as_json: bool) -> None:
    if as_json:
        emit_json(report.as_dict())
        return
    click.echo(f"model {report.model}: {report.factory}, {report.count} vectors"
               + (f" (+{report.hidden} removed, hidden)" if report.hidden else "")
               + f", {report.file_bytes / 2 ** 20:.1f} MB")
    click.echo(f"database: {report.database_count} vectors, change {report.database_seq} (snapshot at {report.snapshot_seq}); "
               + ("the index holds exactly these" if not (report.behind or report.ahead) else
                  f"the index lacks {report.behind} and still holds {report.ahead} removed "
                  "(caught up when loaded)"))
    if report.seconds:
        click.echo(f"built in {report.seconds:.1f} s, trained on {report.trained_on} vectors")


COMMANDS = [embed, gallery_cmd, doctor, index]
