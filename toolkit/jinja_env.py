"""The one Jinja2 environment: sandboxed, StrictUndefined, HTML autoescape.

A missing variable must fail the render, never reach a patient as an empty string.
Templates come from the repository's templates/ folder (partials under
templates/partials/, reached with {% include %} and {% import %}).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from jinja2 import FileSystemLoader, StrictUndefined
from jinja2.sandbox import SandboxedEnvironment


def _date(value: object, fmt: str = "%B %-d, %Y") -> str:
    import datetime as dt

    if isinstance(value, (dt.date, dt.datetime)):
        return value.strftime(fmt)
    return str(value)


@lru_cache(maxsize=32)
def make_env(templates_dir: Path) -> SandboxedEnvironment:
    env = SandboxedEnvironment(
        loader=FileSystemLoader(str(templates_dir)),
        undefined=StrictUndefined,
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["date"] = _date
    return env


def make_string_env() -> SandboxedEnvironment:
    """For subject and preheader: plain text, so no HTML escaping."""
    env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
    env.filters["date"] = _date
    return env
