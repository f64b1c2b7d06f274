"""The README's two set-up commands are the ones CI runs and the example it names exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).parent.parent


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Try it on a fresh machine", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.+?)\n```", section)


def test_readme_has_exactly_two_setup_commands() -> None:
    assert len(readme_commands()) == 2


def test_ci_runs_the_readme_test_command() -> None:
    ci_lines = (ROOT / ".ci/run").read_text(encoding="utf-8").splitlines()
    assert ci_lines[-1] == readme_commands()[1]


def test_readme_example_project_exists() -> None:
    install_command = readme_commands()[0]
    example = install_command.rsplit(" ", 1)[1]
    assert (ROOT / example / "pyproject.toml").is_file()
