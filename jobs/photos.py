"""Photos named on the command line: files, folders (every photo inside) and ``-``
for standard input, read one at a time."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import BinaryIO, Iterator, Sequence

from verifier.errors import VerifierError
from verifier.images import is_image_file, read_photo_bytes

STDIN = "-"


def expand_photos(items: Sequence[str]) -> Iterator[str]:
    """Photos named on the command line; a folder stands for every photo inside it."""
    for item in items:
        path = Path(item)
        if item != STDIN and path.is_dir():
            yield from (str(p) for p in sorted(path.rglob("*")) if is_image_file(p))
        else:
            yield item


def read_one(item: str, stdin: BinaryIO | None = None) -> tuple[str, bytes]:
    """``(name, bytes)`` of one photo file, or of standard input for ``-``."""
    if item == STDIN:
        return "<stdin>", (stdin or sys.stdin.buffer).read()
    return item, read_photo_bytes(Path(item))


def read_items(items: Sequence[str], stdin: BinaryIO | None = None
               ) -> Iterator[tuple[str, bytes | Exception]]:
    """``(name, bytes)`` per photo (folders expanded), read one at a time; an
    unreadable file yields its error in place of the bytes."""
    for item in expand_photos(items):
        try:
            yield read_one(item, stdin)
        except VerifierError as exc:
            yield item, exc
