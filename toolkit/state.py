"""The state folder (toolkit.yaml `state:`): ledger, suppression list, locks."""

from __future__ import annotations

from pathlib import Path

from toolkit.models import Repo


def state_dir(repo: Repo, *, create: bool = True) -> Path:
    rel = repo.config.state if repo.config else ".campaign/"
    path = (repo.root / rel).resolve()
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path
