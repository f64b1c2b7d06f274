"""Concurrent runs on one project are serialised by the lock in dist/, and never build twice."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import MakeProject
from tests.helpers import Sandbox

pytestmark = pytest.mark.slow


def test_eight_simultaneous_runs_build_once(make_project: MakeProject, sandbox: Sandbox) -> None:
    project = make_project("setuptools_cli")
    argv = [sys.executable, "-m", "freshinstall", "--json", os.fspath(project)]
    processes = [
        subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(8)
    ]
    results = [(p.wait(timeout=600), *p.communicate()) for p in processes]

    assert [code for code, _, _ in results] == [0] * 8, [err for _, _, err in results]
    outcomes = [json.loads(out) for _, out, _ in results]
    assert sum(o["rebuilt"] for o in outcomes) == 1
    assert sum(o["installed"] for o in outcomes) == 1
    assert len({o["fingerprint"] for o in outcomes}) == 1
    assert sandbox.run_tool("stcli") == "stcli.cli stcli.commands stcli.commands.hello stcli.utils"
    stamp = json.loads((project / "dist/.freshinstall.json").read_text())
    assert stamp["fingerprint"] == outcomes[0]["fingerprint"]
    assert len(stamp["installs"]) == 1
