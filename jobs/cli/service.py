"""``verifier serve`` and ``verifier keys``: the HTTP service and its API keys."""
from __future__ import annotations

import ipaddress
from pathlib import Path

import click

from verifier.defaults import DEFAULT_MIN_QUALITY

from ..api.settings import (DEFAULT_BODY_TIMEOUT, DEFAULT_HEADER_TIMEOUT, DEFAULT_HOST, DEFAULT_LIMIT_CONCURRENCY,
                            DEFAULT_SERVICE_MAX_PIXELS, DEFAULT_MAX_UPLOAD, DEFAULT_PORT, DEFAULT_QUEUE,
                            DEFAULT_REFRESH_INTERVAL, DEFAULT_SNAPSHOT_INTERVAL, DEFAULT_WORKERS)
from storage.keys import SCOPES

from .context import Context, emit_json, friendly, pass_ctx


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@click.command()
@click.option("--host", default=DEFAULT_HOST, show_default=True, help="Address to listen on.")
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=click.IntRange(0, 65535))
@click.option("--model", help="Model version to serve [default: the most recent].")
@click.option("--no-auth", is_flag=True,
              help="Serve without API keys (refused unless --host is a loopback address).")
@click.option("--max-upload", default=DEFAULT_MAX_UPLOAD, show_default=True, type=click.IntRange(1),
              help="Largest request body in bytes (all its photos together); larger: 413.")
@click.option("--workers", default=DEFAULT_WORKERS, show_default=True, type=click.IntRange(1),
              help="Inference requests running at once.")
@click.option("--queue", default=DEFAULT_QUEUE, show_default=True, type=click.IntRange(0),
              help="Inference requests allowed to wait; more are answered 503 with Retry-After.")
@click.option("--snapshot-interval", default=DEFAULT_SNAPSHOT_INTERVAL, show_default=True,
              type=click.FloatRange(0.1), help="Seconds between index snapshots (when changed).")
@click.option("--refresh-interval", default=DEFAULT_REFRESH_INTERVAL, show_default=True,
              type=click.FloatRange(0.1),
              help="Seconds between checks for gallery changes made by other processes.")
@click.option("--max-pixels", default=DEFAULT_SERVICE_MAX_PIXELS, show_default=True, type=click.IntRange(1),
              help="Largest photo decoded, in pixels (width x height); larger: 413.")
@click.option("--allowed-host", "allowed_hosts", multiple=True, metavar="NAME",
              help="Another Host name to answer besides the bound address and localhost "
                   "(e.g. the name a reverse proxy forwards); repeatable.")
@click.option("--limit-concurrency", default=DEFAULT_LIMIT_CONCURRENCY, show_default=True,
              type=click.IntRange(1),
              help="Open connections and requests past which new requests get 503.")
@click.option("--header-timeout", default=DEFAULT_HEADER_TIMEOUT, show_default=True,
              type=click.FloatRange(0.1),
              help="Seconds a client has to send a request's headers; slower ones are cut.")
@click.option("--body-timeout", default=DEFAULT_BODY_TIMEOUT, show_default=True,
              type=click.FloatRange(0.1),
              help="Seconds per megabyte (at least one megabyte's worth) a client has to send a "
                   "request's body; slower ones get 408 and their place is freed.")
@click.option("--min-quality", default=DEFAULT_MIN_QUALITY, show_default=True, type=click.FloatRange(0, 1),
              help="Refuse enrollments of a face below this quality (422 poor_quality, with the "
                   "reason); 0 takes every face.")
@click.option("--cluster-folder", "cluster_folders", multiple=True, metavar="DIR",
              type=click.Path(path_type=Path, exists=True, file_okay=False),
              help="A server folder that clients with a write key may cluster by path "
                   "(POST /v1/clusters with folder=...; it and its sub-folders); repeatable. "
                   "Without it only uploaded photos are clustered.")
@pass_ctx
@friendly
def serve(ctx: Context, host: str, port: int, model: str | None, no_auth: bool, max_upload: int,
          workers: int, queue: int, snapshot_interval: float, refresh_interval: float,
          max_pixels: int, allowed_hosts: tuple[str, ...], limit_concurrency: int,
          header_timeout: float, body_timeout: float, min_quality: float, cluster_folders: tuple[Path, ...]) -> None:
    """Serve search, verification and the gallery over HTTP (JSON API under /v1).

    Loads the model, threshold and index once. Requests carry an API key
    (`Authorization: Bearer KEY`; see `verifier keys create`). The web page is at
    http://HOST:PORT/ and the OpenAPI schema at /openapi.json. Ctrl-C or SIGTERM
    finish the requests in flight and save the index.

    \b
    Example:
      verifier keys create app --scope write
      verifier serve --port 8080
    """
    import uvicorn

    from ..api import Settings, create_app
    from ..api.protocol import with_header_deadline

    if no_auth and not is_loopback(host):
        raise click.UsageError(f"--no-auth is only allowed on a loopback address, not {host!r}; "
                               "create a key with `verifier keys create` instead")
    ws = ctx.workspace()
    ws.resolve_model(model)  # a missing model is a clear error before the server starts
    settings = Settings(model=model, auth=not no_auth, max_upload=max_upload, workers=workers,
                        queue=queue, snapshot_interval=snapshot_interval,
                        refresh_interval=refresh_interval, max_pixels=max_pixels, host=host,
                        allowed_hosts=allowed_hosts,
                        cluster_folders=tuple(str(p.resolve()) for p in cluster_folders),
                        min_quality=min_quality, body_timeout=body_timeout)
    app = create_app(ws, ctx.database(), settings)
    click.echo(f"serving {ws.root} on http://{host}:{port} "
               f"({'no API keys' if no_auth else 'API keys required'}); Ctrl-C stops", err=True)
    uvicorn.run(app, host=host, port=port, log_level="warning" if ctx.quiet else "info",
                timeout_graceful_shutdown=30, limit_concurrency=limit_concurrency,
                server_header=False, http=with_header_deadline(header_timeout))


@click.group()
def keys() -> None:
    """API keys of the HTTP service (only a hash of each key is stored).

    \b
    Example:
      verifier keys create kiosk --scope read
    """


@keys.command("create")
@click.argument("name")
@click.option("--scope", required=True, type=click.Choice(SCOPES),
              help="read: search, verify, list; write: also enroll and remove; admin: also reports.")
@pass_ctx
@friendly
def create(ctx: Context, name: str, scope: str) -> None:
    """Create a key and print it (the only time it is shown).

    \b
    Example:
      verifier keys create kiosk --scope read
    """
    from storage.keys import create_key

    with ctx.database().begin() as session:
        secret = create_key(session, name, scope)
    click.echo(secret)
    click.echo(f"key {name!r} ({scope}) created; store it now, it is not shown again", err=True)


@keys.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_ctx
@friendly
def list_(ctx: Context, as_json: bool) -> None:
    """List keys (names, scopes, dates; never the keys themselves).

    \b
    Example:
      verifier keys list
    """
    from storage.keys import list_keys

    with ctx.database()() as session:
        rows = list_keys(session)
    if as_json:
        emit_json([{"name": k.name, "scope": k.scope, "created": k.created,
                    "last_used": k.last_used, "revoked": k.revoked} for k in rows])
        return
    for k in rows:
        state = f"revoked {k.revoked:%Y-%m-%d %H:%M}" if k.revoked else "active"
        used = f"last used {k.last_used:%Y-%m-%d %H:%M}" if k.last_used else "never used"
        click.echo(f"{k.name:<24} {k.scope:<6} created {k.created:%Y-%m-%d %H:%M}  {used:<27} {state}")


@keys.command("revoke")
@click.argument("name")
@pass_ctx
@friendly
def revoke(ctx: Context, name: str) -> None:
    """Revoke a key: requests with it are refused (401) from now on.

    \b
    Example:
      verifier keys revoke kiosk
    """
    from storage.keys import revoke_key

    with ctx.database().begin() as session:
        revoke_key(session, name)
    click.echo(f"key {name!r} revoked")


COMMANDS = [serve, keys]
