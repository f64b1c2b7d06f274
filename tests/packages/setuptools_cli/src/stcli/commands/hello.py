def run() -> str:
    return "hello"
