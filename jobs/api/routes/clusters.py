"""Cluster runs: ``/v1/clusters`` starts one in the background (photos uploaded, or
a server folder the operator allowed), shows its progress and groups, gives face
thumbnails, and names a group (which enrolls it)."""
from __future__ import annotations

from pathlib import Path as FsPath

from fastapi import APIRouter, Depends, File, Form, HTTPException, Path, UploadFile
from fastapi.responses import JSONResponse, Response

from storage import clusters as store
from storage.files import write_bytes_atomic
from storage.schema import RunStatus
from verifier.defaults import DEFAULT_MIN_SIZE
from verifier.errors import ImageError
from verifier.images import decode_image, face_thumbnail, image_format, read_photo_bytes, sha256_bytes

from ...cluster import (ClusterRun, PhotoItem, cluster_photos, group_face, load_run, name_group, photo_items,
                        run_gone, start_run)
from ...errors import PhotoNotFound
from ...live import Verifier
from ..deps import Admission, Service, admission, require, service, verifier
from ..schemas import ClusterRunOut, ClusterRunsOut, ClusterRunSummary, ClusterStartedOut, NamedOut, NameIn
from ..settings import MAX_ID, MAX_PHOTOS_PER_CLUSTER
from . import ERROR_RESPONSES, jpeg, upload_name

router = APIRouter(prefix="/v1", tags=["clusters"], responses=ERROR_RESPONSES)

THUMB = 96
SERVICE_ORIGIN = "service"


def _allowed_folder(svc: Service, folder: str) -> tuple[FsPath, FsPath]:
    """``(folder, the allowed root it lies in)``; 403 unless an operator allowed it."""
    wanted = FsPath(folder).resolve()
    for root in svc.settings.cluster_folders:
        base = FsPath(root).resolve()
        if wanted == base or wanted.is_relative_to(base):
            if not wanted.is_dir():
                raise HTTPException(404, "no such folder under the allowed folders")
            return wanted, base
    raise HTTPException(403, "this server clusters only folders its operator allowed "
                             "(verifier serve --cluster-folder DIR); upload the photos instead")


def _stored_uploads(svc: Service, photos: list[UploadFile]) -> tuple[list[PhotoItem], list[FsPath]]:
    """Uploads stored by content under the workspace (never at a client's name), and
    the files this request wrote (to delete when the run is refused)."""
    items, written = [], []
    for upload in photos:
        data = upload.file.read()
        path = svc.ws.upload_path(sha256_bytes(data), image_format(data))
        if not path.is_file():
            write_bytes_atomic(path, data, durable=False)
            written.append(path)
        items.append(PhotoItem(path, upload_name(upload)))
    return items, written


def _busy() -> JSONResponse:
    return JSONResponse({"code": "busy", "message": "this server is running other cluster "
                         "runs; retry later"}, status_code=503, headers={"Retry-After": "10"})


@router.post("/clusters", response_model=ClusterStartedOut, status_code=202,
             dependencies=[Depends(require("write"))])
def start(photos: list[UploadFile] | None = File(None, description="Photos to group (or give folder)"),
          folder: str | None = Form(None, max_length=1024, description=(
              "A folder on the server, allowed by its operator with --cluster-folder")),
          threshold: float | None = Form(None, gt=0, le=100, allow_inf_nan=False, description=(
              "Distance under which faces may be one person [default: the model's threshold]")),
          min_size: int = Form(DEFAULT_MIN_SIZE, ge=1, le=100_000,
                               description="Smaller groups are listed as unclustered"),
          regroup: bool = Form(False, description=(
              "Group these photos afresh instead of letting them join the groups of the "
              "service's last run")),
          svc: Service = Depends(service), v: Verifier = Depends(verifier)):
    """Start grouping the faces of photos into people, in the background: the answer
    (202) holds the run's number; follow it at ``GET /v1/clusters/{run}``. The new
    faces join the groups of the service's last run (``regroup``: start afresh)."""
    if (not photos) == (folder is None):
        raise HTTPException(422, "send photos or a folder (one of them)")
    if svc.clusters.full():  # refused before anything is stored
        return _busy()
    written: list[FsPath] = []
    if photos:
        if len(photos) > MAX_PHOTOS_PER_CLUSTER:
            raise HTTPException(422, f"at most {MAX_PHOTOS_PER_CLUSTER} photos per request; "
                                     "cluster a larger set from an allowed folder")
        items, written = _stored_uploads(svc, photos)
    else:
        where, base = _allowed_folder(svc, folder)
        items = [PhotoItem(i.path, str(i.path.relative_to(base))) for i in photo_items([where])]
        if not items:
            raise HTTPException(422, "no photos in that folder")
    run_id = start_run(svc.sessions, v, threshold=threshold, min_size=min_size, photos=len(items),
                       origin=SERVICE_ORIGIN, regroup=regroup)

    def work(stopping):
        return cluster_photos(svc.ws, svc.sessions, items, verifier=v, run_id=run_id, threads=1,
                              stopping=stopping)

    if not svc.clusters.submit(run_id, work):  # filled up meanwhile
        with svc.sessions.begin() as session:
            store.fail(session, run_id, "refused: the server was running other cluster runs")
        for path in written:
            path.unlink(missing_ok=True)
        return _busy()
    return ClusterStartedOut(run=run_id, status=RunStatus.RUNNING, progress={"done": 0, "total": len(items)},
                             url=f"/v1/clusters/{run_id}")


def _shown(run: ClusterRun) -> dict:
    """A run as a client sees it: runs the service did not start (the CLI's) show
    photo file names only, never where they lie on the server."""
    body = run.as_dict()
    if run.origin == SERVICE_ORIGIN:
        return body
    short = lambda name: FsPath(name).name  # noqa: E731
    for group in body["clusters"]:
        group["photos"] = [short(p) for p in group["photos"]]
        for face in group["faces"]:
            face["photo"] = short(face["photo"])
    body["unclustered"] = [short(p) for p in body["unclustered"]]
    for face in body["unclustered_faces"]:
        face["photo"] = short(face["photo"])
    body["skipped"] = {short(k): "unusable" for k in body["skipped"]}
    return body


@router.get("/clusters", response_model=ClusterRunsOut, dependencies=[Depends(require("read"))])
def runs(svc: Service = Depends(service)) -> ClusterRunsOut:
    """The most recent cluster runs."""
    with svc.sessions() as session:
        rows = store.runs(session)
    return ClusterRunsOut(runs=[ClusterRunSummary(
        run=r.number, status=RunStatus.FAILED if r.status == RunStatus.RUNNING and run_gone(r.params) else r.status,
        started=r.started,
        progress={"done": (r.counts or {}).get("done", 0), "total": (r.counts or {}).get("total", 0)},
        groups=(r.counts or {}).get("groups")) for r in rows])


@router.get("/clusters/{run}", response_model=ClusterRunOut, dependencies=[Depends(require("read"))])
def run(run: int = Path(ge=1, le=MAX_ID), svc: Service = Depends(service)) -> dict:
    """A run's progress and, once done, its groups (largest first) with suggestions."""
    return _shown(load_run(svc.sessions, run))


@router.get("/clusters/{run}/{cluster}/faces/{index}", response_class=Response,
            dependencies=[Depends(require("read"))],
            responses={200: {"content": {"image/jpeg": {}}, "description": "A face thumbnail"}})
async def face(run: int = Path(ge=1, le=MAX_ID), cluster: int = Path(ge=0, le=MAX_ID),
               index: int = Path(ge=0, le=MAX_ID), svc: Service = Depends(service),
               queue: Admission = Depends(admission)):
    """Face ``index`` of group ``cluster``, a square JPEG thumbnail (for the page)."""
    def thumbnail() -> bytes:
        found = group_face(svc.sessions, run, cluster, index)
        try:
            image = decode_image(read_photo_bytes(FsPath(found.path)), name=f"face {index}",
                                 max_pixels=svc.settings.max_pixels)
        except ImageError:  # named by the face, never by where the photo lay
            raise PhotoNotFound(f"the photo of face {index} of group {cluster} is gone") from None
        return jpeg(face_thumbnail(image, found.box, THUMB))

    return Response(await queue.run(thumbnail), media_type="image/jpeg",
                    headers={"Cache-Control": "no-store"})


@router.post("/clusters/{run}/{cluster}/name", response_model=NamedOut,
             dependencies=[Depends(require("write"))])
async def name(body: NameIn, run: int = Path(ge=1, le=MAX_ID), cluster: int = Path(ge=0, le=MAX_ID),
               svc: Service = Depends(service), v: Verifier = Depends(verifier),
               queue: Admission = Depends(admission)) -> NamedOut:
    """Enroll a group's faces as a new person (or into an existing one with
    ``merge``), with the vectors the run computed; every server sees them."""
    named = await queue.run(lambda: name_group(svc.sessions, v, run, cluster, body.name, merge=body.merge))
    return NamedOut(**named.as_dict())
