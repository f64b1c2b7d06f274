"""freshinstall: reinstall a Python command-line tool only when its source changed."""

from __future__ import annotations

__version__ = "0.1.0"

from freshinstall.core import Options, Outcome, freshen
from freshinstall.errors import FreshinstallError

__all__ = ["FreshinstallError", "Options", "Outcome", "__version__", "freshen"]
