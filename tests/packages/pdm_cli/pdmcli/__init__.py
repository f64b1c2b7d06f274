import pkgutil

import pdmcli


def main() -> None:
    print(" ".join(sorted(m.name for m in pkgutil.iter_modules(pdmcli.__path__))))
