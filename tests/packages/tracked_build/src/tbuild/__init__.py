def main() -> None:
    print("tbuild")
