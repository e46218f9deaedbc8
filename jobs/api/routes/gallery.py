"""The gallery: ``/v1/identities``, their photos, enrollment and removal."""
from __future__ import annotations

import hashlib

from fastapi import APIRouter, Depends, File, Form, HTTPException, Path, Query, Request, UploadFile
from fastapi.responses import JSONResponse, Response

from storage import gallery as store
from storage.gallery import identity_name

from ...answers import LARGEST
from ...errors import IdentityNotFound, PhotoNotFound
from ...live import Verifier
from ..deps import Admission, Service, admission, require, service, verifier
from ..schemas import (EnrolledOut, EnrollOut, FaceOfPhoto, IdentitiesPage, IdentityOut, IdentitySummary,
                       LookAlikesOut, MovedOut, MoveIn, PhotoDetail, PhotoOut, RemovedOut, RenamedOut,
                       RenameIn)
from ..settings import (MAX_ID, MAX_OFFSET, MAX_PAGE, MAX_PHOTOS_PER_ENROLL, MAX_STRIP_FACES, MAX_STRIP_SIZE,
                        STRIP_FACES, STRIP_SIZE)
from . import ERROR_RESPONSES, jpeg, upload_name

router = APIRouter(prefix="/v1", tags=["gallery"], responses=ERROR_RESPONSES)

FACE_CHOICE = r"^(largest|[0-9]{1,2}|[0-9]{1,5}(\.[0-9]{1,3})?(,[0-9]{1,5}(\.[0-9]{1,3})?){3})$"
"""``face`` of an enrollment: an index, ``largest``, or a box of four numbers."""


@router.get("/identities", response_model=IdentitiesPage, dependencies=[Depends(require("read"))])
def identities(offset: int = Query(0, ge=0, le=MAX_OFFSET), limit: int = Query(50, ge=1, le=MAX_PAGE),
               svc: Service = Depends(service)) -> IdentitiesPage:
    """People in the gallery with their photo counts, by name, a page at a time."""
    with svc.sessions() as session:
        total, rows = store.identities_page(session, offset, limit)
    return IdentitiesPage(total=total, offset=offset, limit=limit,
                          items=[IdentitySummary(name=n, photos=c) for n, c in rows])


@router.get("/identities/{name}", response_model=IdentityOut, dependencies=[Depends(require("read"))])
def identity(name: str, svc: Service = Depends(service)) -> IdentityOut:
    """One person's gallery faces, each with the other people its photo shows."""
    name = identity_name(name)
    with svc.sessions() as session:
        photos = [PhotoOut(id=r.id, face=r.flags or "face", width=r.width, height=r.height,
                           source=r.source, face_index=r.face, box=r.face_box,
                           others=[FaceOfPhoto(id=o.id, face_index=o.face, identity=o.identity, box=o.box)
                                   for o in others])
                  for r, others in store.identity_faces(session, name)]
    if not photos:
        raise IdentityNotFound(f"no identity {name!r} in the gallery")
    return IdentityOut(name=name, photos=photos)


@router.post("/identities/{name}/photos", response_model=EnrollOut, status_code=201,
             dependencies=[Depends(require("write"))],
             responses={200: {"model": EnrollOut, "description": "Every photo was enrolled already"}})
async def enroll(name: str, photos: list[UploadFile] = File(..., description="One or more photos"),
                 face: str | None = Form(None, max_length=64, pattern=FACE_CHOICE, description=(
                     "Which face of each photo to enroll: N (0 is the largest), 'largest', or a "
                     "box LEFT,TOP,WIDTH,HEIGHT (the face that overlaps it most). Without it a "
                     "photo with several faces is refused (422 several_faces)")),
                 v: Verifier = Depends(verifier), queue: Admission = Depends(admission)):
    """Enroll photos of a person (created when new). All or nothing: one unusable
    photo refuses the request and nothing is stored. The same bytes twice are one photo."""
    name = identity_name(name)
    if len(photos) > MAX_PHOTOS_PER_ENROLL:
        raise HTTPException(422, f"at most {MAX_PHOTOS_PER_ENROLL} photos per request")
    choice = face if face in (None, LARGEST) else (
        tuple(float(v) for v in face.split(",")) if "," in face else int(face))
    items = [(upload_name(p), await p.read()) for p in photos]
    done = await queue.run(lambda: v.enroll_many(name, items, face=choice))
    body = EnrollOut(identity=name, photos=[EnrolledOut(photo_id=e.photo_id, face_index=e.face_index,
                                                        face=e.face,
                                                        created=e.created, box=e.box) for e in done])
    return JSONResponse(body.model_dump(), status_code=201 if any(e.created for e in done) else 200)


@router.delete("/photos/{photo_id}", response_model=RemovedOut, dependencies=[Depends(require("write"))])
def remove_photo(photo_id: int = Path(ge=1, le=MAX_ID),
                 every_face: bool = Query(False, description="Every face of the photo, not only this one"),
                 v: Verifier = Depends(verifier)) -> RemovedOut:
    """Take one face out of the gallery, or every face of its photo (an enrolled
    copy is deleted once no face of it is left)."""
    return RemovedOut(removed_photos=v.remove_photo(photo_id, every_face=every_face).photos)


@router.patch("/photos/{photo_id}", response_model=MovedOut, dependencies=[Depends(require("write"))])
def move_face(body: MoveIn, photo_id: int = Path(ge=1, le=MAX_ID),
              v: Verifier = Depends(verifier)) -> MovedOut:
    """Give one face to another person (created when new); the photo's other faces
    keep theirs (every server follows the change)."""
    name = identity_name(body.identity)
    return MovedOut(id=v.move_face(photo_id, name), identity=name)


@router.delete("/identities/{name}", response_model=RemovedOut, dependencies=[Depends(require("write"))])
def remove_identity(name: str, v: Verifier = Depends(verifier)) -> RemovedOut:
    """Take every photo of a person out of the gallery."""
    name = identity_name(name)
    return RemovedOut(removed_photos=v.remove_identity(name).photos)


@router.patch("/identities/{name}", response_model=RenamedOut, dependencies=[Depends(require("write"))])
def rename_identity(name: str, body: RenameIn, v: Verifier = Depends(verifier)) -> RenamedOut:
    """Rename a person, or merge them into an existing person with ``merge: true``
    (every server follows the change)."""
    photos = v.rename_identity(name, body.name, merge=body.merge)
    return RenamedOut(name=identity_name(body.name), photos=photos)


@router.get("/identities/{name}/faces", response_class=Response, dependencies=[Depends(require("read"))],
            responses={200: {"content": {"image/jpeg": {}},
                             "description": "The person's first faces side by side"},
                       304: {"description": "Unchanged since the ETag the client holds"}})
async def faces(request: Request, name: str,
                limit: int = Query(STRIP_FACES, ge=1, le=MAX_STRIP_FACES),
                size: int = Query(STRIP_SIZE, ge=16, le=MAX_STRIP_SIZE),
                v: Verifier = Depends(verifier), queue: Admission = Depends(admission)):
    """The aligned faces of a person's first ``limit`` photos (in the order of
    ``GET /v1/identities/{name}``) as one JPEG strip, ``size`` pixels square each:
    one request for a gallery card's thumbnails. Its ``ETag`` changes with the photos;
    a client that sends it back in ``If-None-Match`` gets 304 without any work."""
    name = identity_name(name)
    with v.sessions() as session:
        rows = store.identity_photos(session, name)[:limit]
        photos = [(r.id, r.sha256, r.face_box) for r in rows]
    if not photos:
        raise IdentityNotFound(f"no identity {name!r} in the gallery")
    tag = '"' + hashlib.sha256(repr((v.model, size, photos)).encode()).hexdigest()[:32] + '"'
    headers = {"ETag": tag, "Cache-Control": "private, no-cache", "X-Faces": str(len(photos))}
    if request.headers.get("if-none-match") == tag:
        return Response(status_code=304, headers=headers)
    strip = await queue.run(v.face_strip, [p[0] for p in photos], size)
    return Response(jpeg(strip), media_type="image/jpeg", headers=headers)


@router.get("/look-alikes", response_model=LookAlikesOut, dependencies=[Depends(require("read"))])
async def look_alikes(v: Verifier = Depends(verifier), queue: Admission = Depends(admission)) -> LookAlikesOut:
    """Pairs of people the model nearly takes for one: a photo of each within the
    threshold and a margin (`verifier gallery check`), with the photos that bridge them.
    Photos are named by id; nothing is changed."""
    from ...lookalikes import check_gallery

    checked = await queue.run(check_gallery, v)
    return LookAlikesOut(**checked.as_dict(paths=False))


@router.get("/photos/{photo_id}", response_model=PhotoDetail, dependencies=[Depends(require("read"))])
def photo(photo_id: int = Path(ge=1, le=MAX_ID), svc: Service = Depends(service)) -> PhotoDetail:
    """A gallery entry's photo: every face of it in the gallery, with its person and box."""
    with svc.sessions() as session:
        row = store.gallery_photo(session, photo_id)
        if row is None:
            raise PhotoNotFound(f"no gallery photo {photo_id}")
        faces = store.faces_in_photos(session, [row.path]).get(row.path, [])
        return PhotoDetail(id=row.id, identity=row.identity.name, face_index=row.face, width=row.width,
                           height=row.height, source=row.source,
                           faces=[FaceOfPhoto(id=f.id, face_index=f.face, identity=f.identity, box=f.box)
                                  for f in faces])


@router.get("/photos/{photo_id}/image", response_class=Response, dependencies=[Depends(require("read"))],
            responses={200: {"content": {"image/jpeg": {}},
                             "description": "The photo as displayed, re-encoded (no metadata)"}})
async def photo_image(photo_id: int = Path(ge=1, le=MAX_ID), v: Verifier = Depends(verifier),
                      queue: Admission = Depends(admission)):
    """The whole photo of a gallery entry as JPEG, EXIF rotation applied (the frame of
    its faces' boxes) and re-encoded, so nothing of the file's metadata leaves."""
    pixels = await queue.run(v.photo_pixels, photo_id)
    return Response(jpeg(pixels), media_type="image/jpeg", headers={"Cache-Control": "no-store"})


@router.get("/photos/{photo_id}/face", response_class=Response, dependencies=[Depends(require("read"))],
            responses={200: {"content": {"image/jpeg": {}}, "description": "The aligned face chip"}})
async def face(photo_id: int = Path(ge=1, le=MAX_ID), v: Verifier = Depends(verifier), queue: Admission = Depends(admission)):
    """The aligned face chip of a gallery photo, as JPEG (for thumbnails)."""
    chip = await queue.run(v.face_chip, photo_id)
    return Response(jpeg(chip), media_type="image/jpeg",
                    headers={"Cache-Control": "no-store"})  # a face: nothing kept after use

