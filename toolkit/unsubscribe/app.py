"""The one-click unsubscribe endpoint: a Starlette ASGI app.

- `POST <path>` with the RFC 8058 body `List-Unsubscribe=One-Click` suppresses at
  once (the kind the token names) and answers 200 with a tiny plain-text body: no
  cookie, no login, no redirect.
- `GET <path>` shows a confirmation page; nothing changes until its button is
  pressed, because link scanners and previewers fetch every URL in a message.
  The page posts `choice=kind|all` to the same URL and gets a confirmation page.
- A bad token gets a 400 page and changes nothing. `GET /healthz` checks that the
  suppression store takes writes.

<path> is the path of toolkit.yaml `unsubscribe.url` ("/unsubscribe/{token}" by
default). Suppressions go by the token's pseudonym into the repository's
suppression store, the one `plan` and `send` read.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from toolkit.errors import UserError
from toolkit.models import Repo, ToolkitConfig
from toolkit.tokens import (
    Token,
    TokenError,
    UnsupportedVersion,
    unsubscribe_secrets,
    verify_token,
)
from toolkit.unsubscribe import pages
from toolkit.unsubscribe.forms import FormError, is_one_click, parse_form
from toolkit.unsubscribe.writer import SuppressionWriter

log = logging.getLogger("toolkit.unsubscribe")

DEFAULT_PATH = "/unsubscribe/{token}"
MAX_BODY = 8 * 1024  # a one-click body is 26 bytes; anything near this is not one
CSP = (f"default-src 'none'; style-src '{pages.STYLE_HASH}'; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cache-control", b"no-store"),
    (b"cross-origin-resource-policy", b"same-origin"),
]


def route_path(url: str | None, where: str = "toolkit.yaml") -> str:
    """The path the endpoint serves, from toolkit.yaml `unsubscribe.url` (at `where`)."""
    if not url:
        return DEFAULT_PATH
    parts = urlsplit(url)
    if (parts.query or parts.fragment or url.count("{token}") != 1
            or not parts.path.endswith("/{token}")):
        raise UserError(
            "unsubscribe.url must put {token} as the last segment of the path",
            where=where,
            fix='unsubscribe:\n    url: "https://your.domain/unsubscribe/{token}"',
        )
    if "{" in parts.path.replace("{token}", "") or "}" in parts.path.replace("{token}", ""):
        raise UserError("unsubscribe.url may contain no placeholder other than {token}",
                        where=where, fix="remove the other {...} from the URL")
    return parts.path


class _Limits:
    """Too-large requests are refused before their body is read."""

    def __init__(self, app: ASGIApp, max_body: int) -> None:
        self.app, self.max_body = app, max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                names = {k.lower() for k, _ in message["headers"]}
                message["headers"] += [(k, v) for k, v in SECURITY_HEADERS if k not in names]
            await send(message)

        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body):
            await PlainTextResponse("Request body too large.\n", status_code=413)(
                scope, receive, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)


def _where(config: ToolkitConfig) -> str:
    try:
        return str(config.unsubscribe.pos("url"))
    except (AssertionError, KeyError, LookupError):  # a config built in code has no position
        return "toolkit.yaml"


def suppression_path(repo: Repo) -> Path:
    """The store `plan` and `send` read: toolkit.yaml `state:` folder."""
    from toolkit.state import state_dir
    from toolkit.suppression import FILE_NAME

    return state_dir(repo) / FILE_NAME


def create_app(repo: Repo | Path | str, *, secrets: Sequence[bytes] | None = None,
               store_path: Path | None = None, max_body: int = MAX_BODY) -> ASGIApp:
    """The endpoint for a campaign repository (a loaded Repo, or its root folder).

    `secrets` defaults to `UNSUBSCRIBE_SECRET` (+ `_PREVIOUS`, see toolkit.tokens);
    `store_path` to the repository's suppression store.
    """
    if not isinstance(repo, Repo):
        from toolkit.loader import load_repo

        repo, _ = load_repo(Path(repo))
    if repo.config is None:
        raise UserError("toolkit.yaml could not be read", where=str(repo.root / "toolkit.yaml"),
                        fix="run `campaign lint` and fix the errors it reports")
    config = repo.config
    keys = (list(secrets) if secrets is not None
            else unsubscribe_secrets(config.unsubscribe.secret_env))
    store = SuppressionWriter(store_path or suppression_path(repo))
    org = config.organization.name
    mailto = config.unsubscribe.mailto

    def invalid(reason: str) -> HTMLResponse:
        return HTMLResponse(pages.invalid_page(organization=org, mailto=mailto, reason=reason),
                            status_code=400)

    def check(request: Request) -> Token | HTMLResponse:
        try:
            return verify_token(keys, request.path_params["token"])
        except UnsupportedVersion:
            return invalid("This link is from an older email and is no longer accepted.")
        except TokenError:
            return invalid("The link is incomplete or has been changed.")

    async def show(request: Request) -> Response:
        token = check(request)
        if isinstance(token, Response):
            return token
        return HTMLResponse(pages.choose_page(organization=org, kind=token.kind))

    async def post(request: Request) -> Response:
        token = check(request)
        if isinstance(token, Response):
            return token
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > max_body:
                return PlainTextResponse("Request body too large.\n", status_code=413)
        try:
            fields = parse_form(request.headers.get("content-type", ""), bytes(body))
        except FormError:
            fields = {}
        if is_one_click(fields):
            kind, via = token.kind, "one-click"
        elif fields.get("choice") in ("kind", "all"):
            kind, via = (token.kind if fields["choice"] == "kind" else "all"), "page"
        else:
            return invalid("The request did not say what to unsubscribe from.")
        try:
            await store.suppress(token.pseudonym, kind, f"unsubscribe-{via}:{token.campaign}")
        except (sqlite3.Error, OSError) as exc:
            # the sender retries a one-click POST that fails; a person can press again
            log.error("suppression store write failed: %s", type(exc).__name__)
            return PlainTextResponse(
                "The unsubscribe could not be recorded just now; please try again.\n",
                status_code=503, headers={"retry-after": "60"})
        log.info("unsubscribed (%s) campaign=%s kind=%s", via, token.campaign, kind)
        if via == "one-click":
            return PlainTextResponse("Unsubscribed.\n")
        return HTMLResponse(pages.done_page(organization=org, kind=kind))

    async def healthz(request: Request) -> Response:
        if await store.writable():
            return JSONResponse({"status": "ok"})
        return JSONResponse({"status": "error", "detail": "suppression store not writable"},
                            status_code=503)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            store.close()

    path = route_path(config.unsubscribe.url, _where(config))
    app = Starlette(
        routes=[
            Route(path, show, methods=["GET"]),
            Route(path, post, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
    return _Limits(app, max_body)
