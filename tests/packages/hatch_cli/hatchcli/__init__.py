import pkgutil

import hatchcli


def main() -> None:
    print(" ".join(sorted(m.name for m in pkgutil.iter_modules(hatchcli.__path__))))
