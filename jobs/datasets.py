"""Downloading public data sets: the tutorial's 128 seed photos (pinned to one commit,
each file checked against its SHA-256) and LFW (its images and pair lists from the
official location, each checked against the MD5 LFW publishes); broken transfers
resume."""
from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from storage.errors import StorageError

from .progress import bar


SEED_FACES_COMMIT = "a93b13837b2170de4197da4beb3412116073d75c"
SEED_FACES_URL = ("https://raw.githubusercontent.com/doleron/siamese-network-tutorial/"
                  f"{SEED_FACES_COMMIT}/custom_face_database/")


class DownloadError(StorageError):
    """A dataset could not be downloaded or did not match its checksums."""


@dataclass
class FetchSummary:
    folder: Path
    downloaded: list[str] = field(default_factory=list)
    present: int = 0
    resumed: int = 0


def manifest() -> list[tuple[str, str]]:
    """``(sha256, relative path)`` of every seed photo."""
    text = resources.files("jobs").joinpath("data/seed-faces.sha256").read_text("utf-8")
    out = []
    for line in text.splitlines():
        if line.strip():
            digest, path = line.split(maxsplit=1)
            out.append((digest, path.lstrip("*").strip().removeprefix("./")))
    return out


LFW_URL = "http://vis-www.cs.umass.edu/lfw/"
LFW_FILES = {
    # LFW publishes MD5 digests (no SHA-256); these are the official files' (as
    # torchvision pins them too)
    "lfw.tgz": "a17d05bd522c52d84eca14327a23d494",
    "pairs.txt": "9f1ba174e4e1c508ff7cdf10ac338a7d",
    "pairsDevTrain.txt": "4f27cbf15b2da4a85c1907eb4181ad21",
    "pairsDevTest.txt": "5132f7440eb68cf58910c8a45a2ac10b",
}


def _digest(path: Path, algorithm: str = "sha256") -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 16), b""):
            h.update(chunk)
    return h.hexdigest()


def _download(url: str, part: Path, timeout: float) -> bool:
    """Download ``url`` into ``part``, resuming from its current size. Returns
    whether it resumed."""
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        resumed = have > 0 and response.status == 206
        expected = response.headers.get("Content-Length")
        received = 0
        with open(part, "ab" if resumed else "wb") as handle:
            while True:
                chunk = response.read(1 << 16)
                if not chunk:
                    break
                handle.write(chunk)
                received += len(chunk)
    if expected is not None and received < int(expected):
        raise OSError(f"connection closed after {received} of {expected} bytes")
    return resumed


def _fetch_file(summary: FetchSummary, url: str, target: Path, digest: str, algorithm: str,
                timeout: float, offline_hint: str) -> None:
    """Make ``target`` the file at ``url`` whose ``algorithm`` digest is ``digest``:
    kept when already right, else downloaded (resuming a ``.part``) and checked."""
    if target.is_file() and _digest(target, algorithm) == digest:
        summary.present += 1
        return
    created = [p for p in (target.parent, *target.parent.parents) if not p.exists()]  # innermost first
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    try:
        summary.resumed += _download(url, part, timeout)
    except (urllib.error.URLError, OSError) as exc:
        if not part.exists():  # nothing to resume: no empty folders left behind
            for folder in created:
                try:
                    folder.rmdir()
                except OSError:
                    break
        reason = getattr(exc, "reason", exc)
        raise DownloadError(f"could not download {url} ({reason}). {offline_hint}; running this "
                            "command again resumes where it stopped") from None
    if _digest(part, algorithm) != digest:
        part.unlink()
        name = {"sha256": "SHA-256", "md5": "MD5"}.get(algorithm, algorithm)
        raise DownloadError(f"{target.name} does not match its published {name} "
                            "(corrupted in transit or changed upstream); it was deleted, run again")
    os.replace(part, target)
    summary.downloaded.append(str(target.relative_to(summary.folder)))


def fetch_seed_faces(dest: Path, *, base_url: str = SEED_FACES_URL, timeout: float = 30.0,
                     quiet: bool = False) -> FetchSummary:
    """Download the seed photos into ``dest`` (files already there and correct are
    kept). Raises :class:`DownloadError` when offline or on a checksum mismatch."""
    dest = Path(dest)
    summary = FetchSummary(dest)
    files = manifest()
    with bar(len(files), "seed-faces", unit="file", quiet=quiet) as progress:
        for digest, rel in files:
            progress.update(1)
            _fetch_file(summary, base_url + urllib.parse.quote(rel), dest / rel, digest, "sha256",
                        timeout, "If this machine is offline, copy the photos from another "
                        "machine and pass their folder instead, e.g. `verifier pipeline --data "
                        "../shared/data/seed-faces`")
    return summary


def fetch_lfw(dest: Path, *, base_url: str = LFW_URL, files: dict[str, str] | None = None,
              timeout: float = 60.0, quiet: bool = False) -> FetchSummary:
    """Download LFW's images and pair lists into ``dest`` (files already there and
    correct are kept), check each against its published MD5 and unpack the images
    into ``dest/lfw/<name>/<name>_000n.jpg``. Then:
    ``verifier evaluate --pairs DEST/pairs.txt --data DEST/lfw``."""
    import tarfile

    dest = Path(dest)
    summary = FetchSummary(dest)
    files = files or LFW_FILES
    with bar(len(files), "lfw", unit="file", quiet=quiet) as progress:
        for name, digest in files.items():
            progress.update(1)
            _fetch_file(summary, base_url + urllib.parse.quote(name), dest / name, digest, "md5",
                        timeout, f"Offline: fetch {', '.join(files)} on another machine, put them "
                        f"in {dest} and run this again (they are checked and unpacked), or "
                        "evaluate an unpacked copy directly: verifier evaluate --pairs "
                        "PATH/pairs.txt --data PATH/lfw")
    archive = dest / "lfw.tgz"
    marker = dest / "lfw" / ".unpacked"
    if archive.is_file() and not (marker.is_file() and marker.read_text() == _digest(archive, "md5")):
        with tarfile.open(archive) as tar:
            tar.extractall(dest, filter="data")  # no absolute paths, no escapes, no devices
        marker.parent.mkdir(exist_ok=True)
        marker.write_text(_digest(archive, "md5"))
    return summary
