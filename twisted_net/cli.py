"""The twisted-net command (placeholder)."""


def main() -> None:
    raise SystemExit("not yet")
