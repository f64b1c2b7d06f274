def main() -> None:
    print("flat build package")
