import sys

from greet.words import greeting


def main() -> None:
    name = sys.argv[1] if len(sys.argv) > 1 else "world"
    print(greeting(name))
