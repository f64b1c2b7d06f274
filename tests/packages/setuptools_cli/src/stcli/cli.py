"""Prints every module the installed package holds, so tests can see ghosts."""

import pkgutil
import sys

import stcli
from stcli.utils import shout


def main() -> None:
    found = sorted(info.name for info in pkgutil.walk_packages(stcli.__path__, "stcli."))
    print(shout(" ".join(found)))
    sys.exit(0)
