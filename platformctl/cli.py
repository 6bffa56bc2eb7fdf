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

# Commands that import the Pulumi SDK, run the program once under mocks and end the process.
# Python's cyclic garbage collector frees next to nothing there (the SDK's classes and the resource
# graph live until exit: ~1.5 MB more peak memory without it) yet keeps re-walking every object:
# a sixth to a quarter of `plan`'s CPU time. `python -m platformctl` turns it off for them;
# in-process callers of `main` (tests) keep theirs.
WITHOUT_GC = {"plan", "preflight"}


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
