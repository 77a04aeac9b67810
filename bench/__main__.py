"""`python -m bench <command>`: the benchmarks that need a name of their own."""

import sys
from collections.abc import Callable


def _compare(argv: list[str]) -> int:
    from bench.compare.cli import main

    return main(argv)


COMMANDS: dict[str, Callable[[list[str]], int]] = {
    "compare": _compare,
}


def main(argv: list[str]) -> int:
    """Run the named command with the rest of the arguments."""
    if not argv or argv[0] not in COMMANDS:
        print(f"usage: python -m bench {{{','.join(COMMANDS)}}} [options]", file=sys.stderr)
        return 2
    return COMMANDS[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
