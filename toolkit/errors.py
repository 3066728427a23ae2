"""User-facing errors: a clean message, the right exit code, no traceback."""

from __future__ import annotations

import click

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_USAGE = 2


class UserError(click.ClickException):
    """Usage, configuration or input error (exit 2). Say what to do next."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str, *, where: str | None = None, fix: str | None = None):
        text = f"{where}: {message}" if where else message
        if fix:
            text = f"{text}\n  fix: {fix}"
        super().__init__(text)


class CheckFailed(click.ClickException):
    """The check failed: lint errors, refused send, failed verification (exit 1)."""

    exit_code = EXIT_CHECK_FAILED
