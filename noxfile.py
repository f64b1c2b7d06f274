"""Development sessions: `nox` runs lint, typing and the tests, as CI does."""

from __future__ import annotations

import nox

nox.needs_version = ">=2024.4.15"
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["lint", "typing", "tests"]

PYTHON = ["3.11"]
RUFF = "ruff==0.17.6"
MYPY = "mypy==2.4.1"


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """The whole test suite: real builds, real uv/pip/pipx, in temporary sandboxes."""
    session.install(".[test]")
    # Four workers on two cores: most of a test's time is spent waiting on uv and the backends.
    session.run("pytest", "-n", "4", "--dist", "worksteal", *session.posargs)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check."""
    session.install(RUFF)
    session.run("ruff", "check", "src", "tests", "benchmarks", "noxfile.py")
    session.run("ruff", "format", "--check", "src", "tests", "benchmarks", "noxfile.py")


@nox.session(python=PYTHON)
def typing(session: nox.Session) -> None:
    """mypy --strict over src, tests, benchmarks and this file."""
    session.install(MYPY, ".[test]", "nox")
    session.run("mypy")
