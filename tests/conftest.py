"""Shared fixtures. Area-specific helpers live in tests/<area>_helpers.py."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def example_root() -> Path:
    """The bundled example repository (the project root)."""
    return ROOT


def run_campaign(
    *args: str,
    root: Path | None = None,
    env: dict[str, str] | None = None,
    input: str | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """Run the real `campaign` command in a subprocess, as a user would."""
    cmd = [sys.executable, "-m", "toolkit"]
    if root is not None:
        cmd += ["--root", str(root)]
    cmd += list(args)
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        cmd, capture_output=True, text=True, env=full_env, input=input, timeout=timeout
    )


@pytest.fixture
def campaign_cli():
    return run_campaign
