"""`python -m bench COMMAND`: the benchmarks run as subcommands.

Each command is a module with a `SUMMARY`, `add_arguments(parser)` and `run(args) -> int`;
adding one is an import and an entry in `COMMANDS`.
"""

import argparse
from types import ModuleType

from bench import arrivals, cost, shared_process, soak
from bench.compare import cli as compare
from bot.process_exit import exit_now

COMMANDS: dict[str, ModuleType] = {
    "arrivals": arrivals,
    "compare": compare,
    "cost": cost,
    "shared-process": shared_process,
    "soak": soak,
}


def main(argv: list[str] | None = None) -> int:
    """Dispatch to the command named on the command line; return its exit status."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module in COMMANDS.items():
        module.add_arguments(
            commands.add_parser(
                name,
                help=module.SUMMARY,
                description=module.__doc__,
                formatter_class=argparse.RawDescriptionHelpFormatter,
            )
        )
    args = parser.parse_args(argv)
    return COMMANDS[args.command].run(args)


if __name__ == "__main__":
    exit_now(main())
