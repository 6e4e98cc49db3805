"""The ``hubsight`` command: a group whose commands live one module each in this package.

Exit codes are a contract: 0 success, 1 failure, 2 usage error. Errors go to stderr as one line
with the problem and, when there is one, a second line with what to do.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from hubsight import __version__
from hubsight.cli.options import STORE_META
from hubsight.config import resolve_data_dir
from hubsight.datadir import close_new_files
from hubsight.errors import HubsightError, QuerySyntaxError, is_usage_error, path_error
from hubsight.logformat import quiet_library_logs

EXIT_FAILURE = 1
EXIT_USAGE = 2


class HubsightGroup(click.Group):
    """Renders hubsight's errors as plain lines with the contract's exit codes."""

    def invoke(self, ctx: click.Context) -> object:
        """Run the command; turn ``HubsightError`` into a message and an exit code."""
        try:
            return super().invoke(ctx)
        except HubsightError as exc:
            render_error(exc)
            code = EXIT_USAGE if is_usage_error(exc) else EXIT_FAILURE
            sys.exit(code)
        except OSError as exc:
            if isinstance(exc, BrokenPipeError):
                raise  # click ends quietly when the reader of stdout went away (`| head`)
            # A path the system refused (a data directory that cannot be made, a full or
            # read-only disk): the operator's to fix, so a line naming it, not a traceback.
            render_error(path_error(exc))
            sys.exit(EXIT_FAILURE)


def render_error(exc: HubsightError) -> None:
    """Print an error (and its hint) to stderr."""
    click.echo(f"error: {exc.message}", err=True)
    if isinstance(exc, QuerySyntaxError):
        click.echo(exc.excerpt, err=True)
    if exc.hint:
        click.echo(f"hint: {exc.hint}", err=True)


@click.group(cls=HubsightGroup)
@click.version_option(__version__, prog_name="hubsight")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Data directory (default: $HUBSIGHT_DATA_DIR or ./data).",
)
@click.option(
    "--store",
    default=None,
    metavar="URL",
    help="Event store: clickhouse://USER@HOST:PORT/DB[?cluster=NAME] "
    "(default: $HUBSIGHT_STORE, else embedded in the data directory).",
)
@click.pass_context
def cli(ctx: click.Context, data_dir: Path | None, store: str | None) -> None:
    """hubsight: incident detection and response for Microsoft Azure."""
    close_new_files()
    quiet_library_logs()
    ctx.obj = resolve_data_dir(data_dir)
    ctx.meta[STORE_META] = store


def main() -> None:
    """Entry point of the ``hubsight`` script."""
    cli(prog_name="hubsight")


from hubsight.cli.alerts_cmd import alerts  # noqa: E402
from hubsight.cli.audit_cmd import audit  # noqa: E402
from hubsight.cli.azure_cmd import azure  # noqa: E402
from hubsight.cli.backup_cmd import backup_cmd, restore_cmd  # noqa: E402
from hubsight.cli.detect_cmd import detect  # noqa: E402
from hubsight.cli.doctor_cmd import doctor  # noqa: E402
from hubsight.cli.import_cmd import import_command  # noqa: E402
from hubsight.cli.investigations_cmd import investigations  # noqa: E402
from hubsight.cli.notify_cmd import notify  # noqa: E402
from hubsight.cli.parse_cmd import parse_command  # noqa: E402
from hubsight.cli.retention_cmd import retention  # noqa: E402
from hubsight.cli.rules_cmd import rules  # noqa: E402
from hubsight.cli.run_cmd import run  # noqa: E402 - commands register after the group exists
from hubsight.cli.search_cmd import search_cmd  # noqa: E402
from hubsight.cli.simulate_cmd import simulate  # noqa: E402
from hubsight.cli.source_cmd import source  # noqa: E402
from hubsight.cli.status_cmd import status  # noqa: E402
from hubsight.cli.users_cmd import users  # noqa: E402

cli.add_command(source)
cli.add_command(run)
cli.add_command(status)
cli.add_command(parse_command)
cli.add_command(search_cmd)
cli.add_command(detect)
cli.add_command(alerts)
cli.add_command(investigations)
cli.add_command(rules)
cli.add_command(notify)
cli.add_command(retention)
cli.add_command(backup_cmd)
cli.add_command(restore_cmd)
cli.add_command(doctor)
cli.add_command(simulate)
cli.add_command(import_command)
cli.add_command(users)
cli.add_command(audit)
cli.add_command(azure)
