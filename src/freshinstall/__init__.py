"""freshinstall: reinstall a Python command-line tool only when its source changed."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["FreshinstallError", "Options", "Outcome", "__version__", "freshen"]

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from freshinstall.core import Options, Outcome, freshen
    from freshinstall.errors import FreshinstallError


def __getattr__(name: str) -> Any:
    # Imported on first use, so that `freshinstall fingerprint` does not load the whole tool.
    if name == "FreshinstallError":
        from freshinstall.errors import FreshinstallError

        return FreshinstallError
    if name in {"Options", "Outcome", "freshen"}:
        from freshinstall import core

        return getattr(core, name)
    raise AttributeError(f"module 'freshinstall' has no attribute {name!r}")
