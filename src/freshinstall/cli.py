"""The command line: parse, call the library, print, and map errors to exit codes.

Exit codes: 0 success, 1 an error freshinstall reports, 2 a usage error, 130 interrupted.
Progress and timings go to stderr; the result (or exactly one JSON object) goes to stdout.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import click

from freshinstall import __version__
from freshinstall.core import Options, Outcome, fingerprint_project, freshen
from freshinstall.errors import FreshinstallError
from freshinstall.project import load_project

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class _Settings:
    """Set by the options of the running command, read by the error boundary in main()."""

    traceback = False


def use_color(stream: Any) -> bool:
    """NO_COLOR wins, then FORCE_COLOR, then whether the stream is a terminal."""
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class StderrReporter:
    """Progress lines on stderr: ``phase  detail  (seconds)``."""

    def __init__(self, *, quiet: bool) -> None:
        self.quiet = quiet
        self.color = use_color(sys.stderr)

    def step(self, phase: str, detail: str, seconds: float) -> None:
        if not self.quiet:
            label = (
                click.style(f"{phase:<11}", fg="cyan", bold=True) if self.color else f"{phase:<11}"
            )
            click.echo(f"{label} {detail} ({seconds:.2f}s)", err=True, color=self.color)

    def note(self, message: str) -> None:
        if not self.quiet:
            click.echo(f"note: {message}", err=True)


class DefaultCommandGroup(click.Group):
    """``freshinstall [OPTIONS] [PATH]`` means ``freshinstall install [OPTIONS] [PATH]``."""

    default_command = "install"

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        global_options = {"--help", "-h", "--version"}
        if not args or (args[0] not in self.commands and args[0] not in global_options):
            args = [self.default_command, *args]
        return super().parse_args(ctx, args)


def _verbose_callback(ctx: click.Context, param: click.Parameter, value: bool) -> bool:  # noqa: ARG001
    _Settings.traceback = _Settings.traceback or value
    return value


verbose_option = click.option(
    "-v",
    "--verbose",
    is_flag=True,
    callback=_verbose_callback,
    expose_value=True,
    help="Stream the output of the backend and uv; show tracebacks.",
)
quiet_option = click.option("-q", "--quiet", is_flag=True, help="Print only errors.")
json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print one JSON object on stdout."
)
path_argument = click.argument(
    "path", default=".", type=click.Path(path_type=Path, file_okay=True, dir_okay=True)
)


@click.group(
    cls=DefaultCommandGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog="Without a command, `freshinstall [OPTIONS] [PATH]` runs `install`.",
)
@click.version_option(__version__, prog_name="freshinstall")
def cli() -> None:
    """Install a Python command-line tool from its source, freshly and only when it changed."""


@cli.command("install")
@path_argument
@click.option("--python", metavar="PYTHON", help="The interpreter to install with (passed to uv).")
@click.option(
    "--with",
    "with_",
    multiple=True,
    metavar="REQUIREMENT",
    help="Also install this requirement (repeatable).",
)
@click.option("--force", is_flag=True, help="Rebuild and reinstall even when nothing changed.")
@click.option("--dry-run", is_flag=True, help="Say what would be done; change nothing.")
@json_option
@verbose_option
@quiet_option
def install_command(
    path: Path,
    python: str | None,
    with_: tuple[str, ...],
    force: bool,
    dry_run: bool,
    as_json: bool,
    verbose: bool,
    quiet: bool,
) -> int:
    """Build and install PATH (default: .) when its source changed since the last install."""
    options = Options(
        path=path, python=python, with_=with_, force=force, dry_run=dry_run, stream=verbose
    )
    outcome = freshen(options, StderrReporter(quiet=quiet))
    if as_json:
        click.echo(json.dumps(asdict(outcome), sort_keys=True))
    elif not quiet:
        click.echo(describe(outcome))
    return 0


@cli.command("fingerprint")
@path_argument
@json_option
@verbose_option
def fingerprint_command(path: Path, as_json: bool, verbose: bool) -> int:  # noqa: ARG001
    """Print the fingerprint of PATH's build inputs: one hex line, e.g. for a CI cache key."""
    _, result = fingerprint_project(load_project(path))
    if as_json:
        click.echo(
            json.dumps(
                {
                    "fingerprint": result.digest,
                    "files": len(result.files),
                    "extras": sorted(result.extras),
                }
            )
        )
    else:
        click.echo(result.digest)
    return 0


def describe(outcome: Outcome) -> str:
    """The one result line printed on stdout."""
    name = outcome.project or "the project"
    label = f"{name} {outcome.version}" if outcome.version else name
    if outcome.up_to_date:
        return f"{label} is up to date ({outcome.installer} in {outcome.target})"
    if outcome.dry_run:
        action = "build and install" if outcome.reason != "not installed here yet" else "install"
        if outcome.reason in {
            "the installed copy was removed",
            "the installed copy was changed by another install",
        }:
            action = "reinstall"
        return f"would {action} {name}: {outcome.reason}"
    done = "built and installed" if outcome.rebuilt else "installed"
    return f"{label} {done} ({outcome.reason}) with {outcome.installer} in {outcome.target}"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return the exit code (never raises, except SystemExit)."""
    _Settings.traceback = False
    try:
        result = cli.main(
            args=list(argv) if argv is not None else None,
            prog_name="freshinstall",
            standalone_mode=False,
        )
    except click.exceptions.Exit as exit_:
        return exit_.exit_code
    except click.exceptions.Abort:
        click.echo("error: interrupted", err=True)
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        click.echo("error: interrupted", err=True)
        return EXIT_INTERRUPTED
    except click.ClickException as error:
        error.show()
        return error.exit_code
    except FreshinstallError as error:
        if error.output and not _Settings.traceback:
            click.echo(error.output.rstrip("\n"), err=True)
        if _Settings.traceback:
            _print_traceback()
        click.echo(f"error: {error}", err=True)
        return EXIT_ERROR
    except OSError as error:
        # Anything the modules did not translate is still one line, not a traceback.
        if _Settings.traceback:
            _print_traceback()
        where = f": {error.filename}" if error.filename else ""
        click.echo(f"error: {error.strerror or error}{where}", err=True)
        return EXIT_ERROR
    return result if isinstance(result, int) else 0


def _print_traceback() -> None:
    import traceback

    traceback.print_exc()


def run() -> None:
    """The console script."""
    sys.exit(main())
