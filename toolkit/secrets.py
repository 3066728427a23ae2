"""Secrets come from the environment only; a missing one is a clear exit-2 error."""

from __future__ import annotations

import os

from toolkit.errors import UserError


def secret(env_name: str, *, purpose: str) -> bytes:
    value = os.environ.get(env_name)
    if not value:
        raise UserError(
            f"environment variable {env_name} is not set; it holds the {purpose}",
            fix=f"export {env_name}=<a long random value>, e.g. the output of "
            "`python3 -c 'import secrets; print(secrets.token_urlsafe(32))'`",
        )
    return value.encode("utf-8")


def optional_secret(env_name: str | None) -> bytes | None:
    if not env_name:
        return None
    value = os.environ.get(env_name)
    return value.encode("utf-8") if value else None
