"""One-click unsubscribe (RFC 8058): the ASGI endpoint that turns a token into a suppression.

`create_app(repo)` returns an ASGI app; run it with `campaign unsubscribe-server`
or mount it in any ASGI server. See docs/unsubscribe.md.
"""

from __future__ import annotations

from toolkit.unsubscribe.app import DEFAULT_PATH, create_app, route_path

__all__ = ["DEFAULT_PATH", "create_app", "route_path"]
