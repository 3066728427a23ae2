"""Run the unsubscribe endpoint under a real uvicorn on loopback, for tests and benchmarks."""

from __future__ import annotations

import contextlib
import shutil
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import uvicorn

from toolkit.suppression import FILE_NAME, SuppressionStore

SCAFFOLD = Path(__file__).resolve().parent.parent / "toolkit" / "scaffold"
SECRET = b"unsubscribe-test-secret-not-for-production"
AUDIT_KEY = b"unsubscribe-test-audit-key"


def scaffold_repo(root: Path) -> Path:
    shutil.copytree(SCAFFOLD, root)
    return root


def store_of(root: Path) -> SuppressionStore:
    return SuppressionStore(root / ".campaign" / FILE_NAME)


@contextlib.contextmanager
def serve(app: object) -> Iterator[str]:
    """Serve an ASGI app on 127.0.0.1 (ephemeral port) in a thread; yields the base URL.

    The socket listens before the thread starts, so early requests wait in the
    backlog instead of failing: no polling for readiness."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", access_log=False,  # type: ignore[arg-type]
                            lifespan="on", server_header=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
