"""The `campaign` command: argument parsing and output only; the work lives in stage modules.

Each subcommand lives in its own module under toolkit/commands/ and is imported
only when used, so `campaign lint` does not pay for the SMTP stack.
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass
from pathlib import Path

import click

from toolkit import __version__
from toolkit.errors import EXIT_USAGE

# name -> "module:attribute"; an explicit registry, no import-time discovery
COMMANDS: dict[str, str] = {
    "init": "toolkit.commands.init:init",
    "lint": "toolkit.commands.lint:lint",
    "rules": "toolkit.commands.rules:rules",
    "build": "toolkit.commands.build:build",
    "render": "toolkit.commands.render:render",
    "digest": "toolkit.commands.digest:digest",
    "plan": "toolkit.commands.plan:plan",
    "data": "toolkit.commands.data:data",
    "suppress": "toolkit.commands.suppress:suppress",
    "keygen": "toolkit.commands.keygen:keygen",
    "approve": "toolkit.commands.approve:approve",
    "approve-review": "toolkit.commands.approve_review:approve_review",
    "verify": "toolkit.commands.verify:verify",
    "audit": "toolkit.commands.audit:audit",
    "send": "toolkit.commands.send:send",
    "demo": "toolkit.commands.demo:demo",
    "unsubscribe-server": "toolkit.commands.unsubscribe_server:unsubscribe_server",
}


@dataclass(frozen=True)
class App:
    """What every command gets from the group: where the repository is, and --debug."""

    root: Path
    debug: bool

    def load(self):  # imports the loader lazily so --help stays fast
        from toolkit.loader import load_repo

        return load_repo(self.root)


class LazyGroup(click.Group):
    def __init__(self, *args, lazy: dict[str, str] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.lazy = lazy or {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self.lazy))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.lazy:
            module, attr = self.lazy[name].split(":")
            try:
                return getattr(importlib.import_module(module), attr)
            except ModuleNotFoundError as exc:
                if exc.name != module:
                    raise
                return None
        return super().get_command(ctx, name)


pass_app = click.make_pass_decorator(App)


@click.group(cls=LazyGroup, lazy=COMMANDS,
             context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--root", type=click.Path(file_okay=False, path_type=Path), default=".",
              show_default=True, help="The campaign repository.")
@click.option("--debug", is_flag=True, help="Show a traceback for unexpected errors.")
@click.version_option(__version__, prog_name="campaign")
@click.pass_context
def cli(ctx: click.Context, root: Path, debug: bool) -> None:
    """Healthcare email campaigns as code: lint, preview, plan, approve and send."""
    ctx.obj = App(root=root, debug=debug)


def main(argv: list[str] | None = None) -> None:
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        rv = cli.main(args=argv, prog_name="campaign", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(EXIT_USAGE)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as exc:  # an unexpected bug: the only thing that may show a traceback
        if debug:
            raise
        # only the type: an exception's text may quote contact data
        click.echo(f"internal error ({type(exc).__name__}): this is a bug in campaign;\n"
                   "  rerun with --debug for a traceback and report it", err=True)
        sys.exit(3)
    sys.exit(rv if isinstance(rv, int) else 0)


if __name__ == "__main__":  # pragma: no cover
    main()
