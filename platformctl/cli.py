"""Command-line entry point. Each command lives in its own module exposing `register(subparsers)`;
the parser built there sets `func(args) -> int` (the exit code)."""

from __future__ import annotations

import argparse
import importlib
import sys

# One module per command (or command group). Commands validate their input before acting.
COMMAND_MODULES = [
    "platformctl.plan",
    "platformctl.models",
    "platformctl.smoke",
    "platformctl.policy_check",
    "platformctl.preflight",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="platformctl", description="Operate the ai-platform stacks.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
