"""The command line: parse, call the library, print, and map errors to exit codes.

Exit codes: 0 success, 1 an error freshinstall reports, 2 a usage error, 130 interrupted;
``status`` and ``doctor`` exit 1 for "stale" / "problems found" and 2 for an error.
Progress and timings go to stderr; the result (or exactly one JSON object) goes to stdout.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from freshinstall import __version__
from freshinstall.config import INSTALLERS, parse_config_settings
from freshinstall.core import Options, describe, freshen
from freshinstall.errors import FreshinstallError
from freshinstall.output import StderrReporter, prefix, use_color
from freshinstall.project import load_project

if TYPE_CHECKING:
    from click.shell_completion import CompletionItem

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
#: status and doctor: 1 means "stale" / "problems found", so an error that left them unable to
#: tell is 2.
EXIT_CANNOT_TELL = 2


class _Settings:
    """Set by the options of the running command, read by the error boundary in main()."""

    traceback = False
    #: The exit code of an error (status and doctor use EXIT_CANNOT_TELL).
    error_exit = EXIT_ERROR


class DefaultCommandGroup(click.Group):
    """``freshinstall [OPTIONS] [PATH]`` means ``freshinstall install [OPTIONS] [PATH]``."""

    default_command = "install"

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        global_options = {"--help", "-h", "--version"}
        # While completing the first word (nothing typed before it), stay at the group: its
        # shell_complete offers the commands as well as what `install` would complete.
        completing_first_word = ctx.resilient_parsing and not args
        if not completing_first_word and (
            not args or (args[0] not in self.commands and args[0] not in global_options)
        ):
            args = [self.default_command, *args]
        return super().parse_args(ctx, args)

    def shell_complete(self, ctx: click.Context, incomplete: str) -> list[CompletionItem]:
        """The first word: a command, an option of the group or of `install`, or a directory."""
        items = super().shell_complete(ctx, incomplete)
        default = self.commands[self.default_command]
        if incomplete.startswith("-"):
            known = {item.value for item in items}
            items += [
                item for item in default.shell_complete(ctx, incomplete) if item.value not in known
            ]
        elif not items:  # no command starts so: a PATH for `install`
            items = _directories(incomplete)
        return items


def complete_directory(
    ctx: click.Context,  # noqa: ARG001
    param: click.Parameter,  # noqa: ARG001
    incomplete: str,
) -> list[CompletionItem]:
    """PATH is a project directory: let the shell complete directories."""
    return _directories(incomplete)


def _directories(incomplete: str) -> list[CompletionItem]:
    from click.shell_completion import CompletionItem

    return [CompletionItem(incomplete, type="dir")]


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
    "path",
    default=".",
    type=click.Path(path_type=Path, file_okay=True, dir_okay=True),
    shell_complete=complete_directory,
)


@click.group(
    cls=DefaultCommandGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog="Without a command, `freshinstall [OPTIONS] [PATH]` runs `install`.",
)
@click.version_option(__version__, prog_name="freshinstall")
def cli() -> None:
    """Install a Python command-line tool from its source, freshly and only when it changed."""


def install_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options that choose how and where to install (shared by install and watch)."""
    decorators = [
        click.option(
            "--installer",
            type=click.Choice(INSTALLERS),
            help="How to install: uv tool (default), uv pip or pip into an environment, pipx.",
        ),
        click.option(
            "--python",
            metavar="PYTHON",
            help="The tool's interpreter (uv-tool, pipx), or the target environment: an "
            "interpreter or a virtual environment directory (uv-pip, pip).",
        ),
        click.option(
            "--with",
            "with_",
            multiple=True,
            metavar="REQUIREMENT",
            help="Also install this requirement (repeatable).",
        ),
        click.option(
            "--editable/--no-editable",
            default=None,
            help="Install in editable mode: reinstall only when the metadata changes.",
        ),
        click.option(
            "-C",
            "--config-setting",
            "config_settings",
            multiple=True,
            metavar="KEY=VALUE",
            help="A config setting for the build backend (repeatable).",
        ),
    ]
    for decorator in reversed(decorators):
        command = decorator(command)
    return command


def make_options(path: Path, values: dict[str, Any], **flags: bool) -> Options:
    """Options from the parsed install options; empty repeatables count as "not given"."""
    settings = values.pop("config_settings")
    return Options(
        path=path,
        installer=values.pop("installer"),
        python=values.pop("python"),
        with_=values.pop("with_") or None,
        editable=values.pop("editable"),
        config_settings=parse_config_settings(settings) if settings else None,
        **flags,
    )


@cli.command("install")
@path_argument
@install_options
@click.option("--force", is_flag=True, help="Rebuild and reinstall even when nothing changed.")
@click.option("--dry-run", is_flag=True, help="Say what would be done; change nothing.")
@json_option
@verbose_option
@quiet_option
def install_command(
    path: Path,
    force: bool,
    dry_run: bool,
    as_json: bool,
    verbose: bool,
    quiet: bool,
    **install: Any,
) -> int:
    """Build and install PATH (default: .) when its source changed since the last install."""
    options = make_options(path, install, force=force, dry_run=dry_run, stream=verbose)
    with StderrReporter(quiet=quiet, live=not verbose) as reporter:
        outcome = freshen(options, reporter)
    if as_json:
        click.echo(json.dumps(asdict(outcome), sort_keys=True))
    elif not quiet:
        click.echo(describe(outcome))
    return 0


@cli.command("fingerprint")
@path_argument
@click.option(
    "--no-cache",
    is_flag=True,
    help="Read every file; neither read nor write the stat cache in dist/.",
)
@json_option
@verbose_option
def fingerprint_command(
    path: Path,
    no_cache: bool,
    as_json: bool,
    verbose: bool,  # noqa: ARG001
) -> int:
    """Print the fingerprint of PATH's build inputs: one hex line, e.g. for a CI cache key."""
    from freshinstall.launch import fingerprint_text

    click.echo(fingerprint_text(path, no_cache=no_cache, as_json=as_json))
    return 0


@cli.command("status")
@path_argument
@install_options
@json_option
@verbose_option
def status_command(path: Path, as_json: bool, verbose: bool, **install: Any) -> int:  # noqa: ARG001
    """Say whether PATH's installed tool is up to date, and if not, why; change nothing.

    Takes the install options, to compare with the install they would make. Exit codes: 0 up
    to date, 1 stale, 2 error.
    """
    from freshinstall.status import check

    _Settings.error_exit = EXIT_CANNOT_TELL
    result = check(make_options(path, install))
    if as_json:
        click.echo(json.dumps(result.to_json(), sort_keys=True))
    else:
        click.echo("\n".join(result.lines()))
    return 0 if result.fresh else 1


@cli.command("doctor")
@path_argument
@click.option(
    "--python",
    metavar="PYTHON",
    help="Also check the environment of this interpreter or virtual environment directory "
    "(default: the active VIRTUAL_ENV).",
)
@json_option
@verbose_option
def doctor_command(path: Path, python: str | None, as_json: bool, verbose: bool) -> int:
    """Explain why an installed copy of PATH runs old code: a line per problem, with its fix.

    Compares the uv tool and pipx copies (and --python's) with a fresh build, also copies
    installed without freshinstall, and checks PATH, leftovers in the tree and uv. Exit codes:
    0 no problems, 1 problems found, 2 error.
    """
    from freshinstall.doctor import diagnose

    _Settings.error_exit = EXIT_CANNOT_TELL
    with StderrReporter(quiet=False, live=not verbose) as reporter:
        report = diagnose(path, python=python, reporter=reporter)
    if as_json:
        click.echo(json.dumps(report.to_json(), sort_keys=True))
    else:
        click.echo("\n".join(report.lines()))
    return 1 if report.findings else 0


@cli.command("watch")
@path_argument
@install_options
@click.option(
    "--poll",
    is_flag=True,
    envvar="FRESHINSTALL_WATCH_POLL",
    help="Poll for changes every 0.5 s instead of using watchfiles (FRESHINSTALL_WATCH_POLL=1).",
)
@verbose_option
@quiet_option
def watch_command(path: Path, poll: bool, verbose: bool, quiet: bool, **install: Any) -> int:
    """Install PATH now and again after every change to its source, until Ctrl-C.

    A failed build is reported and watching goes on.
    """
    from freshinstall.watch import Run, watch

    options = make_options(path, install, stream=verbose)
    reporter = StderrReporter(quiet=quiet, live=not verbose)

    def report(run: Run) -> None:
        reporter.stop()  # a failed run ends without the step that would erase its live line
        if run.error is not None:
            show_error(run.error)
        elif run.outcome and not quiet and (run.first or not run.outcome.up_to_date):
            click.echo(describe(run.outcome))
        if run.first and not quiet:
            click.echo(f"watching {path} for changes (Ctrl-C stops)", err=True)

    with reporter:
        try:
            watch(options, reporter, report, poll=poll)
        except KeyboardInterrupt:
            reporter.stop()
            click.echo("stopped watching", err=True)
    return 0


@cli.command("clean")
@path_argument
@click.option("--dry-run", is_flag=True, help="List what would be removed; remove nothing.")
@click.option(
    "-v",
    "--verbose",
    is_flag=True,
    callback=_verbose_callback,
    help="Also say what was kept, and why; show tracebacks.",
)
@quiet_option
def clean_command(path: Path, dry_run: bool, verbose: bool, quiet: bool) -> int:
    """Remove what freshinstall can prove is a build artefact of PATH, and nothing else.

    Its own wheels and files in dist/, setuptools' build/ and *.egg-info; never a file git
    tracks, never anyone else's. Prints the paths removed (or, with --dry-run, to remove).
    """
    from freshinstall.clean import clean

    with StderrReporter(quiet=quiet) as reporter:
        plan = clean(load_project(path), reporter, dry_run=dry_run)
    for item in plan.remove:
        click.echo(path / item.path)
    if verbose:
        for item in plan.keep:
            click.echo(f"kept {path / item.path}: {item.reason}", err=True)
    if not quiet:
        count = len(plan.remove)
        done = f"{'would remove' if dry_run else 'removed'} {count} path{'s' * (count != 1)}"
        click.echo(done if count else "nothing to clean", err=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return the exit code (never raises, except SystemExit)."""
    _Settings.traceback = False
    _Settings.error_exit = EXIT_ERROR
    try:
        result = cli.main(
            args=list(argv) if argv is not None else None,
            prog_name="freshinstall",
            standalone_mode=False,
        )
    except click.exceptions.Exit as exit_:
        return exit_.exit_code
    except (click.exceptions.Abort, KeyboardInterrupt):
        show_error_line("interrupted")
        return EXIT_INTERRUPTED
    except click.ClickException as error:
        error.show()
        return error.exit_code
    except (FreshinstallError, OSError) as error:
        show_error(error)
        return _Settings.error_exit
    return result if isinstance(result, int) else 0


def report(error: FreshinstallError | OSError | KeyboardInterrupt, *, verbose: bool) -> int:
    """Show an error raised outside main() (by launch's quick path) as main() would; its exit."""
    _Settings.traceback = verbose
    if isinstance(error, KeyboardInterrupt):
        show_error_line("interrupted")
        return EXIT_INTERRUPTED
    show_error(error)
    return EXIT_ERROR


def show_error(error: FreshinstallError | OSError) -> None:
    """The failing tool's output (unless it was streamed), then ``error: <one line>``."""
    if isinstance(error, FreshinstallError) and error.output and not _Settings.traceback:
        click.echo(error.output.rstrip("\n"), err=True)
    if _Settings.traceback:
        import traceback

        traceback.print_exception(error)
    if isinstance(error, FreshinstallError):
        show_error_line(str(error))
    else:
        # Anything the modules did not translate is still one line, not a traceback.
        where = f": {error.filename}" if error.filename else ""
        show_error_line(f"{error.strerror or error}{where}")


def show_error_line(message: str) -> None:
    """``error: <message>`` on stderr, the prefix in red where colours are on."""
    color = use_color(sys.stderr)
    click.echo(f"{prefix('error', color=color)} {message}", err=True, color=color)
