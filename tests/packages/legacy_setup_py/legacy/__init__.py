def main() -> None:
    print("legacy")
