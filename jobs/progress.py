"""Progress bars for jobs (tqdm on stderr, silenced with ``quiet``)."""
from __future__ import annotations

from typing import Any


def bar(total: int, desc: str, unit: str = "photo", quiet: bool = False) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, disable=quiet, leave=False,
                dynamic_ncols=True, mininterval=0.5)
