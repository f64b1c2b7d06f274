import pkgutil

import poetrycli


def main() -> None:
    print(" ".join(sorted(m.name for m in pkgutil.iter_modules(poetrycli.__path__))))
