import pkgutil

import flitcli


def main() -> None:
    print(" ".join(sorted(m.name for m in pkgutil.iter_modules(flitcli.__path__))))
