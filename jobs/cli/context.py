"""What every command shares: the workspace and database context, the mapping of
the library's errors to one-line messages and exit statuses, and JSON output."""
from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import Any, Callable

import click

from verifier import defaults as d


def library_errors() -> tuple[type[BaseException], ...]:
    from storage.errors import StorageError
    from verifier.errors import VerifierError

    return (VerifierError, StorageError)


def friendly(func: Callable | None = None, *, status: int = 1) -> Callable:
    """Turn the library's own exceptions into a one-line ``Error: ...`` and exit
    ``status``; Ctrl-C into a short message and exit status 130. Use as
    ``@friendly`` or ``@friendly(status=2)``."""
    if func is None:
        return functools.partial(friendly, status=status)

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except library_errors() as exc:
            if status == 1:
                raise click.ClickException(str(exc)) from None
            click.echo(f"Error: {exc}", err=True)
            sys.exit(status)
        except KeyboardInterrupt:
            click.echo("interrupted: nothing half-written was kept", err=True)
            sys.exit(130)

    return wrapper


class Context:
    """Global options and the workspace and database, opened on first use."""

    def __init__(self, home: Path | None, quiet: bool, db_url: str | None = None) -> None:
        self.home = home
        self.quiet = quiet
        self.db_url = db_url
        self._ws = None
        self._db = None

    def workspace(self):
        from storage.workspace import Workspace

        if self._ws is None:
            self._ws = Workspace.open(self.home)
        return self._ws

    def database(self):
        from storage.database import open_database

        if self._db is None:
            self._db = open_database(self.db_url or self.workspace().database_url)
        return self._db


def emit_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, default=str, ensure_ascii=False))


pass_ctx = click.make_pass_decorator(Context)


MAX_FACES = click.option("--max-faces", default=d.DEFAULT_MAX_FACES, show_default=True,
                         type=click.IntRange(1), help="Faces at most per photo, largest first.")
"""The option of every command that looks at each face of a photo."""
MIN_QUALITY = click.option("--min-quality", default=d.DEFAULT_MIN_QUALITY, show_default=True,
                           type=click.FloatRange(0, 1),
                           help="A face of a lower quality gets no name (unknown, poor_quality); "
                                "0 judges every face.")
"""The quality floor of the commands that name faces."""
MODEL = click.option("--model", help="Model version [default: the most recent].")
"""The option of every command that uses one model version."""
