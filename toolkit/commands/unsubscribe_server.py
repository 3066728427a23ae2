"""`campaign unsubscribe-server`: serve the one-click unsubscribe endpoint with uvicorn."""

from __future__ import annotations

import socket

import click

from toolkit.cli import App, pass_app
from toolkit.errors import UserError


@click.command("unsubscribe-server")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (put a TLS-terminating proxy in front).")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on; 0 picks a free one.")
@click.option("--access-log", is_flag=True,
              help="Log every request line. Off by default: the URL holds the token.")
@pass_app
def unsubscribe_server(app: App, host: str, port: int, access_log: bool) -> None:
    """Serve POST/GET <unsubscribe.url path> and GET /healthz until interrupted."""
    import uvicorn

    from toolkit.unsubscribe import create_app, route_path

    repo, _findings = app.load()
    asgi = create_app(repo)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise UserError(f"cannot listen on {host}:{port}: {exc.strerror}",
                        fix="choose another --port, or stop the program using it") from exc
    sock.listen(128)  # connections made from here on wait in the backlog until uvicorn serves
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if family == socket.AF_INET6 else host
    path = route_path(repo.config.unsubscribe.url if repo.config else None)
    click.echo(f"unsubscribe endpoint: http://{shown}:{bound}{path}", err=True)
    click.echo(f"health check:         http://{shown}:{bound}/healthz", err=True)
    config = uvicorn.Config(asgi, access_log=access_log, log_level="info",
                            server_header=False, proxy_headers=True, lifespan="on")
    uvicorn.Server(config).run(sockets=[sock])
