"""External pair lists: LFW's ``pairs.txt`` (and ``pairsDevTest.txt``) and CSV files.

LFW: a header with the number of folds and of same-person pairs per fold (``10 300``),
or a single number for one fold (``500``); then per fold that many ``name n1 n2``
lines (same person) followed by as many ``name1 n1 name2 n2`` lines (different).
Image ``n`` of ``name`` is ``name/name_000n.jpg``.

CSV: a header with the columns ``a,b,label`` (``fold`` optional): photo paths
relative to the data folder, label 1 for the same person, 0 for different people.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from .errors import VerifierError


class PairListError(VerifierError):
    """A pair list cannot be read (the message names the file and line)."""


@dataclass(frozen=True)
class ListedPair:
    a: str  # relative POSIX paths inside the data folder
    b: str
    label: int
    fold: int
    line: int


@dataclass
class PairList:
    format: str  # "lfw" or "csv"
    pairs: list[ListedPair] = field(default_factory=list)
    folds: int = 0  # folds given by the file (0: none)


def lfw_path(name: str, number: int) -> str:
    return f"{name}/{name}_{number:04d}.jpg"


def _safe(path: str, where: str) -> str:
    p = PurePosixPath(path.replace("\\", "/"))
    if not path or p.is_absolute() or ".." in p.parts:
        raise PairListError(f"{where}: {path!r} is not a path inside the data folder")
    return str(p)


def read_pair_list(path: Path | str) -> PairList:
    """Parse a pair list, detecting its format from the first line."""
    path = Path(path)
    try:
        text = path.read_text("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise PairListError(f"cannot read the pair list {path}: {exc}") from None
    first = text.lstrip().splitlines()[0] if text.strip() else ""
    header = [h.strip().lower() for h in next(csv.reader([first]), [])]
    if {"a", "b", "label"} <= set(header):
        return _read_csv(path, text)
    if first.split() and all(t.isdigit() for t in first.split()) and len(first.split()) <= 2:
        return _read_lfw(path, text)
    raise PairListError(f"{path} line 1: neither LFW's header ('10 300' or '500') nor a CSV "
                        f"header with columns a,b,label: {first[:80]!r}")


def _read_lfw(path: Path, text: str) -> PairList:
    lines = text.splitlines()
    numbers = [int(t) for t in lines[0].split()]
    folds, per_fold = (1, numbers[0]) if len(numbers) == 1 else numbers
    out = PairList("lfw", folds=folds if folds > 1 else 0)
    body = [(i + 1, ln.split()) for i, ln in enumerate(lines) if i > 0 and ln.strip()]
    expected = folds * per_fold * 2
    if len(body) != expected:
        raise PairListError(f"{path}: the header announces {folds} x {per_fold} same and as many "
                            f"different pairs ({expected} lines), the file has {len(body)}")
    for k, (number, parts) in enumerate(body):
        fold, within = divmod(k, 2 * per_fold)
        same = within < per_fold
        where = f"{path} line {number}"
        try:
            if same and len(parts) == 3:
                a, b = lfw_path(parts[0], int(parts[1])), lfw_path(parts[0], int(parts[2]))
            elif not same and len(parts) == 4:
                a, b = lfw_path(parts[0], int(parts[1])), lfw_path(parts[2], int(parts[3]))
            else:
                raise ValueError
        except ValueError:
            kind = "'name n1 n2' (same person)" if same else "'name1 n1 name2 n2' (different)"
            raise PairListError(f"{where}: expected {kind}, got {' '.join(parts)[:80]!r}") from None
        out.pairs.append(ListedPair(_safe(a, where), _safe(b, where), int(same), fold, number))
    return out


def _read_csv(path: Path, text: str) -> PairList:
    reader = csv.DictReader(io.StringIO(text))
    reader.fieldnames = [f.strip().lower() for f in reader.fieldnames or []]
    out = PairList("csv")
    folds = set()
    for row in reader:
        number = reader.line_num
        where = f"{path} line {number}"
        try:
            label = int(str(row["label"]).strip())
            fold = int(str(row.get("fold") or 0).strip())
        except (TypeError, ValueError):
            raise PairListError(f"{where}: label (and fold) must be integers") from None
        if label not in (0, 1):
            raise PairListError(f"{where}: label must be 1 (same) or 0 (different), got {label}")
        a, b = (str(row.get(c) or "").strip() for c in ("a", "b"))
        out.pairs.append(ListedPair(_safe(a, where), _safe(b, where), label, fold, number))
        folds.add(fold)
    if not out.pairs:
        raise PairListError(f"{path}: no pairs after the header")
    if "fold" in reader.fieldnames and len(folds) > 1:
        out.folds = len(folds)
    return out
