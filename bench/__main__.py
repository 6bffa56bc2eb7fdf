"""`make bench`: runs every benchmark module and prints its figures (quoted in the README)."""

import importlib
import pkgutil
import sys

from rich.console import Console
from rich.table import Table

import bench


def main(selected: list[str]) -> int:
    console = Console()
    names = selected or sorted(m.name for m in pkgutil.iter_modules(bench.__path__) if not m.name.startswith("_"))
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        table = Table(title=f"bench.{name}: {(module.__doc__ or '').strip().splitlines()[0]}")
        table.add_column("measurement")
        table.add_column("figure", justify="right")
        for label, figure in module.run():
            table.add_row(label, figure)
        console.print(table)
    return 0


sys.exit(main(sys.argv[1:]))
