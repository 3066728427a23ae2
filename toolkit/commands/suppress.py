"""`campaign suppress add|import|list`: the suppression list in the state folder."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import click

from toolkit.cli import App, pass_app
from toolkit.errors import UserError
from toolkit.state import state_dir
from toolkit.suppression import KINDS, SuppressionStore

# Deliberately loose: an opt-out must never be refused for a syntax nit, only garbage is.
_ADDRESS = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+\Z")

kind_option = click.option(
    "--kind",
    type=click.Choice(KINDS),
    default="commercial",
    show_default=True,
    help="commercial: commercial campaigns; fundraising: fundraising; all: every campaign.",
)


def _store(app: App) -> SuppressionStore:
    repo, _ = app.load()
    return SuppressionStore.for_state(state_dir(repo))


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


@click.group()
def suppress() -> None:
    """The suppression list: addresses (or pseudonyms) that must not get a kind of message."""


@suppress.command("add")
@click.argument("emails", metavar="EMAIL...", nargs=-1, required=True)
@kind_option
@pass_app
def add(app: App, emails: tuple[str, ...], kind: str) -> None:
    """Suppress one or more addresses (matched case-insensitively)."""
    bad = [i for i, e in enumerate(emails, 1) if not _ADDRESS.match(e.strip())]
    if bad:
        raise UserError(
            f"argument {bad[0]} is not an email address; nothing was added",
            fix="pass addresses like name@example.org",
        )
    with _store(app) as store:
        new = store.add_many(((e.strip(), None) for e in emails), kind=kind, source="cli")
    click.echo(
        f"added {_plural(new, 'suppression')} (kind {kind}); "
        f"{len(set(e.strip().lower() for e in emails)) - new} already present"
    )


def read_addresses(path: Path) -> list[tuple[int, str]]:
    """(line, address) from a file of one address a line, or a CSV with an `email` column."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise UserError(f"{path} does not exist") from None
    except UnicodeDecodeError:
        raise UserError("not valid UTF-8", where=str(path), fix="save the file as UTF-8") from None
    lines = text.splitlines()
    first = next(
        (i for i, line in enumerate(lines) if line.strip() and not line.startswith("#")), None
    )
    if first is None:
        return []
    header = [c.strip().lower() for c in next(csv.reader([lines[first]]))]
    if "email" not in header:
        return [
            (i, line.strip())
            for i, line in enumerate(lines, 1)
            if line.strip() and not line.lstrip().startswith("#")
        ]
    col = header.index("email")
    reader = csv.reader(io.StringIO(text, newline=""))
    out: list[tuple[int, str]] = []
    start = 1
    for n, row in enumerate(reader):
        line, start = start, reader.line_num + 1
        if n <= first or not row or not any(c.strip() for c in row):
            continue
        out.append((line, row[col].strip() if col < len(row) else ""))
    return out


@suppress.command("import")
@click.argument("file", metavar="FILE", type=click.Path(dir_okay=False, path_type=Path))
@kind_option
@pass_app
def import_(app: App, file: Path, kind: str) -> None:
    """Suppress every address in FILE: one a line, or a CSV with an `email` column."""
    rows = read_addresses(file)
    bad = [line for line, a in rows if not _ADDRESS.match(a)]
    if bad:
        shown = ", ".join(map(str, bad[:10])) + (
            f" and {len(bad) - 10} more" if len(bad) > 10 else ""
        )
        raise UserError(
            f"not an email address on line {shown}; nothing was imported",
            where=str(file),
            fix="correct or delete those lines and import again",
        )
    with _store(app) as store:
        new = store.add_many(((a, None) for _, a in rows), kind=kind, source=f"import:{file.name}")
    click.echo(
        f"imported {_plural(new, 'new suppression')} (kind {kind}) from {file}; "
        f"{len(rows) - new} already present or repeated"
    )


@suppress.command("list")
@pass_app
def list_(app: App) -> None:
    """Print every entry: address (or pseudonym:...), kind, source, date added; tab-separated."""
    with _store(app) as store:
        entries = store.list()
    for e in entries:
        who = e.address if e.address is not None else f"pseudonym:{e.pseudonym}"
        click.echo(f"{who}\t{e.kind}\t{e.source}\t{e.added_at}")
    click.echo(f"{_plural(len(entries), 'suppression')}", err=True)


# Inbound suppressions (issue 7): mail that came back, read by toolkit/inbound.py.
from toolkit.commands.suppress_inbound import import_dsn, import_mbox  # noqa: E402

suppress.add_command(import_mbox)
suppress.add_command(import_dsn)
