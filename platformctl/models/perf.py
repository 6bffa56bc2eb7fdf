"""`platformctl models perf --url URL --model A [--model B ...]`: latency percentiles and throughput
of models on a KServe-v2 server (Triton, MLServer, KServe...), per concurrency level, side by side.

Inputs are generated from each model's metadata as `smoke` does (variable dimensions 1, numbers
ones) and sent as JSON tensors over HTTP (the core protocol, no Triton extension). Each concurrency
level runs N requests (or S seconds) from that many threads, each with its own client, after a
short warm-up; every loop is bounded by count and time.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field

MAX_REQUESTS = 100_000
MAX_DURATION = 600.0
MAX_CONCURRENCY = 256


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("perf", help="latency percentiles and throughput of served models, side by side",
                                 description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True, help="server HTTP URL, e.g. http://localhost:8000")
    parser.add_argument("--model", action="append", required=True, metavar="NAME", help="model to measure (repeatable)")
    parser.add_argument("--concurrency", default="1,4,16", help="comma-separated levels (default 1,4,16)")
    amount = parser.add_mutually_exclusive_group()
    amount.add_argument("--requests", type=int, help="requests per model and level (default 200)")
    amount.add_argument("--duration", type=float, metavar="S", help="seconds per model and level instead of a count")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per request (default 30)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON instead of a table")
    parser.set_defaults(func=cmd_perf)


class UsageError(Exception):
    pass


@dataclass
class Level:
    model: str
    concurrency: int
    latencies: list[float] = field(default_factory=list)  # ms
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def figures(self) -> dict:
        ordered = sorted(self.latencies)
        pick = (lambda q: ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]) if ordered else (lambda q: None)
        return {"model": self.model, "concurrency": self.concurrency, "requests": len(self.latencies),
                "errors": len(self.errors), "first_error": self.errors[0] if self.errors else None,
                "p50_ms": pick(0.50), "p95_ms": pick(0.95), "p99_ms": pick(0.99),
                "mean_ms": statistics.fmean(ordered) if ordered else None,
                "throughput": len(ordered) / self.seconds if self.seconds > 0 else 0.0}


def parse_levels(text: str) -> list[int]:
    try:
        levels = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UsageError(f"--concurrency {text!r}: give comma-separated whole numbers, e.g. 1,4,16") from None
    if not levels or any(not 1 <= c <= MAX_CONCURRENCY for c in levels):
        raise UsageError(f"--concurrency {text!r}: each level must be between 1 and {MAX_CONCURRENCY}")
    return list(dict.fromkeys(levels))


def _inputs(metadata: dict):
    from .control import request_tensors

    inputs, outputs = request_tensors(metadata)
    return inputs, outputs or None


def prepare(url: str, models: list[str], timeout: float) -> dict:
    """Metadata and request tensors per model; raises RuntimeError with one line when the server or a
    model cannot be used (before anything is measured)."""
    from .control import client_for, describe

    client = client_for(url, timeout)
    try:
        live = client.is_server_live()
    except Exception as exc:  # noqa: BLE001 - connection errors come in many types
        raise RuntimeError(f"cannot reach {url}: {describe(exc)}") from None
    if not live:
        raise RuntimeError(f"{url} answers but is not live")
    prepared = {}
    for name in models:
        try:
            if not client.is_model_ready(name):
                raise RuntimeError(f"model {name!r} is not ready on {url}")
            prepared[name] = _inputs(client.get_model_metadata(name))
        except RuntimeError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise RuntimeError(f"model {name!r} on {url}: {describe(exc)}") from None
    return prepared


def measure(url: str, name: str, tensors, concurrency: int, requests: int | None, duration: float | None,
            timeout: float) -> Level:
    from .control import client_for, describe

    level = Level(name, concurrency)
    inputs, outputs = tensors
    lock = threading.Lock()
    budget = {"left": requests if requests is not None else MAX_REQUESTS}
    stop_at = [float("inf")]  # set when every worker has warmed up

    def take() -> bool:
        with lock:
            if budget["left"] <= 0 or time.monotonic() >= stop_at[0]:
                return False
            budget["left"] -= 1
            return True

    def worker():
        client = client_for(url, timeout)
        try:
            for _ in range(2 if concurrency > 1 else 3):  # warm-up, not counted
                client.infer(name, inputs, outputs=outputs, timeout=int(timeout * 1_000_000))
            barrier.wait(timeout=timeout)
            while take():
                start = time.perf_counter()
                try:
                    client.infer(name, inputs, outputs=outputs, timeout=int(timeout * 1_000_000))
                    took = (time.perf_counter() - start) * 1000
                    with lock:
                        level.latencies.append(took)
                except Exception as exc:  # noqa: BLE001
                    with lock:
                        level.errors.append(describe(exc))
        except Exception as exc:  # noqa: BLE001 - warm-up failed or the barrier broke
            with lock:
                level.errors.append(describe(exc))
        finally:
            client.close()

    barrier = threading.Barrier(concurrency + 1)
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    try:
        barrier.wait(timeout=timeout * 4)
    except threading.BrokenBarrierError:
        pass
    stop_at[0] = time.monotonic() + (duration if duration is not None else MAX_DURATION)
    start = time.monotonic()
    for thread in threads:
        thread.join(timeout=max(0.0, stop_at[0] - time.monotonic()) + timeout + 5)
    level.seconds = time.monotonic() - start
    return level


def cmd_perf(args: argparse.Namespace) -> int:
    try:
        levels = parse_levels(args.concurrency)
        if args.requests is not None and not 1 <= args.requests <= MAX_REQUESTS:
            raise UsageError(f"--requests must be between 1 and {MAX_REQUESTS}")
        if args.duration is not None and not 0 < args.duration <= MAX_DURATION:
            raise UsageError(f"--duration must be between 0 and {MAX_DURATION:g} seconds")
        if args.timeout <= 0:
            raise UsageError("--timeout must be > 0")
        from .control import client_for

        client_for(args.url, args.timeout)  # a malformed URL is a usage error
    except (UsageError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    requests = args.requests if args.requests is not None or args.duration is not None else 200
    models = list(dict.fromkeys(args.model))
    try:
        prepared = prepare(args.url, models, args.timeout)
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    results = [measure(args.url, name, prepared[name], c, requests, args.duration, args.timeout).figures()
               for c in levels for name in models]
    if args.json:
        print(json.dumps({"url": args.url, "results": results}, indent=2))
    else:
        _print_table(args.url, models, results, requests, args.duration)
    failed = [r for r in results if r["errors"]]
    for r in failed:
        print(f"error: {r['model']} at concurrency {r['concurrency']}: {r['errors']} request(s) failed, "
              f"first: {r['first_error']}", file=sys.stderr)
    return 1 if failed else 0


def _print_table(url: str, models: list[str], results: list[dict], requests: int | None, duration: float | None) -> None:
    from rich.console import Console
    from rich.table import Table

    amount = f"{duration:g} s" if duration is not None else f"{requests} requests"
    table = Table(title=f"models perf: {url} ({amount} per model and level)")
    for column in ("concurrency", "model", "p50 ms", "p95 ms", "p99 ms", "throughput /s", "errors", f"vs {models[0]}"):
        table.add_column(column, justify="left" if column == "model" else "right")
    first = {r["concurrency"]: r["throughput"] for r in results if r["model"] == models[0]}
    fmt = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
    for r in results:
        base = first.get(r["concurrency"]) or 0
        ratio = f"{r['throughput'] / base:.2f}x" if base and r["model"] != models[0] else ""
        table.add_row(str(r["concurrency"]), r["model"], fmt(r["p50_ms"]), fmt(r["p95_ms"]), fmt(r["p99_ms"]),
                      f"{r['throughput']:.1f}", str(r["errors"]), ratio)
    Console().print(table)
