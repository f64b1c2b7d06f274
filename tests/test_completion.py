"""Shell completion: the scripts click generates, and what the first word completes to.

The shell runs the installed console script with ``_FRESHINSTALL_COMPLETE`` set, so that is
what these tests run: the ``freshinstall`` beside the test interpreter.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(sys.executable).parent / "freshinstall"

pytestmark = pytest.mark.skipif(
    not SCRIPT.exists(), reason=f"no freshinstall console script beside {sys.executable}"
)


def complete(instruction: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT)],
        env={**os.environ, "_FRESHINSTALL_COMPLETE": instruction, **env},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("shell", "marker"),
    [
        ("bash", "complete -o nosort -F _freshinstall_completion freshinstall"),
        ("zsh", "#compdef freshinstall"),
        ("fish", "complete --no-files --command freshinstall"),
    ],
)
def test_completion_script(shell: str, marker: str) -> None:
    result = complete(f"{shell}_source")
    assert result.returncode == 0, result.stderr
    assert marker in result.stdout
    assert "_FRESHINSTALL_COMPLETE=" in result.stdout
    assert result.stderr == ""


def bash_candidates(line: str) -> list[str]:
    """What bash would be offered for the last word of ``line`` ("type,value" pairs)."""
    words = line.split(" ")
    result = complete("bash_complete", COMP_WORDS=line, COMP_CWORD=str(len(words) - 1))
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def test_first_word_completes_the_commands() -> None:
    assert bash_candidates("freshinstall ") == [
        f"plain,{name}" for name in ("clean", "doctor", "fingerprint", "install", "status", "watch")
    ]
    assert bash_candidates("freshinstall st") == ["plain,status"]


def test_first_word_completes_install_options_and_directories() -> None:
    # Without a command, freshinstall runs `install`: its options and PATH complete too.
    options = bash_candidates("freshinstall --")
    assert {"plain,--version", "plain,--installer", "plain,--force", "plain,--dry-run"} <= set(
        options
    )
    assert bash_candidates("freshinstall ./") == ["dir,./"]
    assert bash_candidates("freshinstall --force ") == ["dir,"]


def test_option_values_complete() -> None:
    assert bash_candidates("freshinstall --installer ") == [
        "plain,uv-tool",
        "plain,uv-pip",
        "plain,pip",
        "plain,pipx",
    ]
    assert "plain,--json" in bash_candidates("freshinstall status --")
