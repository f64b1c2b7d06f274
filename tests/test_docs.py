"""The documentation's cheap invariants; `nox -s docs` (mkdocs build --strict) checks the rest.

The site's own links, anchors and navigation are checked by the strict build. These tests
cover what it does not see: the README's links, the generated CLI reference pointing at the
real click group, and the pinned docs requirements.
"""

from __future__ import annotations

import re
from pathlib import Path

import click

from freshinstall import cli

ROOT = Path(__file__).parent.parent
DOCS = ROOT / "docs"


def test_readme_links_point_at_existing_files() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text)
    local = [link for link in links if "://" not in link]
    assert local, "the README links to the docs"
    assert [link for link in local if not (ROOT / link).is_file()] == []


def test_every_page_is_in_the_navigation() -> None:
    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    nav = re.findall(r"^\s+- [^:]+: (\S+\.md)$", config, re.MULTILINE)
    pages = sorted(path.name for path in DOCS.glob("*.md"))
    assert sorted(nav) == pages


def test_cli_reference_is_generated_from_the_click_group() -> None:
    page = (DOCS / "cli.md").read_text(encoding="utf-8")
    module = re.search(r":module: (\S+)", page)
    command = re.search(r":command: (\S+)", page)
    assert "::: mkdocs-click" in page
    assert module
    assert command
    assert module[1] == cli.__name__
    group = getattr(cli, command[1])
    assert isinstance(group, click.Group)
    assert {"install", "status", "doctor", "watch", "clean", "fingerprint"} <= set(group.commands)


def test_docs_requirements_are_pinned() -> None:
    lines = (DOCS / "requirements.txt").read_text(encoding="utf-8").splitlines()
    requirements = [line.split("#")[0].strip() for line in lines]
    requirements = [line for line in requirements if line]
    assert requirements
    assert [line for line in requirements if not re.fullmatch(r"[\w.-]+==[\w.]+", line)] == []
    direct = (DOCS / "requirements.in").read_text(encoding="utf-8").splitlines()
    assert {line for line in direct if line and not line.startswith("#")} <= set(requirements)
