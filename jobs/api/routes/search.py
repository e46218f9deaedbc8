"""``POST /v1/search``, ``POST /v1/detect`` and ``POST /v1/verify``."""
from __future__ import annotations

from fastapi import APIRouter, Depends, File, Form, HTTPException, UploadFile

from ...live import Verifier
from ..deps import Admission, admission, require, verifier
from verifier.defaults import DEFAULT_MAX_FACES

from ..schemas import DetectOut, FaceOut, MatchOut, SearchFaceOut, SearchOut, VerifyOut
from ..settings import MAX_FACES, MAX_ID, MAX_K
from . import ERROR_RESPONSES, data_url, upload_name

router = APIRouter(prefix="/v1", tags=["search"], responses=ERROR_RESPONSES)


@router.post("/search", response_model=SearchOut, dependencies=[Depends(require("read"))])
async def search(photo: UploadFile = File(..., description="The photo to look up"),
                 k: int = Form(5, ge=1, le=MAX_K, description="Identities to return per face"),
                 chips: bool = Form(False, description="Also return each aligned face"),
                 max_faces: int = Form(DEFAULT_MAX_FACES, ge=1, le=MAX_FACES,
                                       description="Faces at most, largest first"),
                 v: Verifier = Depends(verifier), queue: Admission = Depends(admission)) -> SearchOut:
    """The ``k`` gallery identities nearest to every face of the photo (``faces``,
    largest first), ranked as `verifier query` ranks them: an identity's distance is
    that of its closest photo. The top-level ``matches`` are the largest face's."""
    data = await photo.read()
    result = await queue.run(lambda: v.search(data, k, upload_name(photo), keep_chip=chips,
                                              max_faces=max_faces))
    faces = [SearchFaceOut(**f.as_dict() | {"matches": _matches(f.matches)}, chip=data_url(f.chip))
             for f in result.faces]
    return SearchOut(model=result.model, face=result.face, threshold=v.threshold,
                     unknown=result.unknown, reason=result.reason, probe_chip=faces[0].chip,
                     matches=faces[0].matches, width=result.width, height=result.height, faces=faces)


def _matches(matches) -> list[MatchOut]:
    return [MatchOut(rank=m.rank, identity=m.identity, distance=m.distance, passes=m.passes,
                     photo_id=m.photo_id) for m in matches]


@router.post("/detect", response_model=DetectOut, dependencies=[Depends(require("read"))])
async def detect(photo: UploadFile = File(..., description="The photo to look at"),
                 chips: bool = Form(False, description="Also return each aligned face"),
                 max_faces: int = Form(DEFAULT_MAX_FACES, ge=1, le=MAX_FACES,
                                       description="Faces at most, largest first"),
                 v: Verifier = Depends(verifier), queue: Admission = Depends(admission)) -> DetectOut:
    """Every face in the photo, largest first: box, score, landmarks and (with
    ``chips``) the aligned face. The gallery is not touched."""
    data = await photo.read()
    found = await queue.run(lambda: v.detect(data, upload_name(photo), chips=chips,
                                             max_faces=max_faces))
    return DetectOut(photo=found.photo, width=found.width, height=found.height,
                     faces=[FaceOut(**f.as_dict(), chip=data_url(f.chip)) for f in found.faces])


@router.post("/verify", response_model=VerifyOut, dependencies=[Depends(require("read"))])
async def verify(photo_a: UploadFile | None = File(None), photo_b: UploadFile | None = File(None),
                 photo_a_id: int | None = Form(None, ge=1, le=MAX_ID, description="A gallery photo instead of photo_a"),
                 photo_b_id: int | None = Form(None, ge=1, le=MAX_ID, description="A gallery photo instead of photo_b"),
                 threshold: float | None = Form(None, gt=0, le=100, allow_inf_nan=False,
                                                  description="Override the calibrated threshold"),
                 chips: bool = Form(False, description="Also return both aligned faces"),
                 face_a: int = Form(0, ge=0, le=MAX_FACES, description="Which face of photo_a "
                                    "(0 is the largest)"),
                 face_b: int = Form(0, ge=0, le=MAX_FACES, description="Which face of photo_b"),
                 v: Verifier = Depends(verifier), queue: Admission = Depends(admission)) -> VerifyOut:
    """Whether two photos (uploads or gallery photo ids) show the same person."""
    sides = []
    for upload, photo_id, label in ((photo_a, photo_a_id, "a"), (photo_b, photo_b_id, "b")):
        if (upload is None) == (photo_id is None):
            raise HTTPException(422, f"give exactly one of photo_{label} (a file) and photo_{label}_id")
        sides.append((photo_id, upload_name(upload)) if upload is None else
                     (await upload.read(), upload_name(upload)))
    (a, name_a), (b, name_b) = sides
    result = await queue.run(lambda: v.verify(a, b, threshold=threshold, names=(name_a, name_b),
                                              keep_chips=chips, face_a=face_a, face_b=face_b))
    chip_a, chip_b = (data_url(c) for c in (result.chips or (None, None)))
    return VerifyOut(**result.as_dict(), chip_a=chip_a, chip_b=chip_b)

