"""Command-line entry point. Each command lives in its own module exposing `register(subparsers)`;
the parser built there sets `func(args) -> int` (the exit code)."""

from __future__ import annotations

import argparse
import importlib
import sys

# Command name -> module. Only the module of the command being run is imported, so a quick
# command (models push) does not pay for importing the Pulumi SDK (plan). Commands validate their
# input before acting.
COMMANDS = {
    "plan": "platformctl.plan",
    "models": "platformctl.models",
    "smoke": "platformctl.smoke",
    "policy": "platformctl.policy_check",
    "preflight": "platformctl.preflight",
}
COMMAND_MODULES = list(dict.fromkeys(COMMANDS.values()))


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="platformctl", description="Operate the ai-platform stacks.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    modules = [COMMANDS[command]] if command in COMMANDS else COMMAND_MODULES
    for name in modules:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv[0] if argv else None).parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
