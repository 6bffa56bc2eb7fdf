"""`platformctl models ...`: validate a Triton model repository, push it to the stack's bucket,
load/unload models on a Triton in `explicit` model control mode, optimise an ONNX model for it
(`optimize`) and measure served models side by side (`perf`)."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from .outputs import OutputsError, load_outputs, model_location

# Command modules are imported by every platformctl invocation to build the parser, so the heavy
# imports (tritonclient, boto3, rich) happen inside the commands that use them.


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("models", help="validate, push, load and unload Triton models",
                                   description=__doc__)
    commands = parser.add_subparsers(dest="models_command", required=True, metavar="SUBCOMMAND")

    validate = commands.add_parser("validate", help="check a model repository offline")
    validate.add_argument("directory", type=Path, metavar="DIR")
    validate.set_defaults(func=cmd_validate)

    push = commands.add_parser(
        "push", help="upload a model repository to S3 by content, configs last",
        description="Validate DIR, then upload what changed to s3://BUCKET/PREFIX/. Unchanged files are "
                    "skipped, each model's config.pbtxt goes up after its data files, and nothing is "
                    "deleted unless --prune.")
    push.add_argument("directory", type=Path, metavar="DIR")
    target = push.add_mutually_exclusive_group(required=True)
    target.add_argument("--stack", help="take bucket and prefix from this stack's outputs (pulumi stack output)")
    target.add_argument("--outputs", type=Path, metavar="FILE", help="take them from saved `pulumi stack output --json`")
    target.add_argument("--bucket", help="bucket name (with --prefix)")
    push.add_argument("--prefix", help="key prefix in the bucket, e.g. triton/standard (with --bucket)")
    push.add_argument("--deployment", help="Triton deployment whose prefix to use (with --stack/--outputs)")
    push.add_argument("--endpoint-url", default=None,
                      help="S3-compatible endpoint (default: AWS_ENDPOINT_URL or AWS)")
    push.add_argument("--dry-run", action="store_true", help="show what would change, change nothing")
    push.add_argument("--prune", action="store_true", help="delete remote objects under the prefix that are not in DIR")
    push.add_argument("--concurrency", type=int, default=10, help="parallel requests (default 10)")
    push.set_defaults(func=cmd_push)

    for action in ("load", "unload"):
        sub = commands.add_parser(action, help=f"{action} a model on a Triton in explicit model control mode")
        sub.add_argument("name", metavar="NAME")
        sub.add_argument("--url", required=True, help="Triton HTTP URL, e.g. http://localhost:8000")
        sub.add_argument("--timeout", type=float, default=60.0, help="seconds (default 60)")
        sub.set_defaults(func=cmd_control, action=action)

    from . import optimize, perf

    optimize.register(commands)
    perf.register(commands)


def _err(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)


def cmd_validate(args: argparse.Namespace) -> int:
    from .validate import validate_repository

    models, problems = validate_repository(args.directory)
    if problems:
        for problem in problems:
            print(problem)
        print(f"{args.directory}: {len(problems)} problem{'s' * (len(problems) != 1)}", file=sys.stderr)
        return 1
    names = ", ".join(m.name for m in models)
    print(f"{args.directory}: {len(models)} model{'s' * (len(models) != 1)} valid ({names})")
    return 0


def _human(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def _resolve_target(args: argparse.Namespace) -> tuple[str, str]:
    if args.bucket:
        if args.prefix is None:
            raise OutputsError("--bucket needs --prefix (use --prefix '' for the bucket root)")
        if args.deployment:
            raise OutputsError("--deployment goes with --stack/--outputs, not --bucket")
        return args.bucket, args.prefix
    if args.prefix is not None:
        raise OutputsError("--prefix goes with --bucket; with --stack/--outputs it comes from the outputs")
    return model_location(load_outputs(args.stack, args.outputs), args.deployment)


def cmd_push(args: argparse.Namespace) -> int:
    # Imported here so `models validate` does not pay for boto3.
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

    from . import push as sync
    from .validate import validate_repository

    if args.concurrency < 1:
        _err("--concurrency must be >= 1")
        return 2
    try:
        bucket, prefix = _resolve_target(args)
    except OutputsError as exc:
        _err(str(exc))
        return 2
    models, problems = validate_repository(args.directory)
    if problems:
        for problem in problems:
            print(problem, file=sys.stderr)
        _err(f"{args.directory} is not a valid model repository ({len(problems)} problem{'s' * (len(problems) != 1)}); nothing uploaded")
        return 1

    console = Console(stderr=True)
    out = Console()
    prefix = sync.normalize_prefix(prefix)
    where = f"s3://{bucket}/{prefix + '/' if prefix else ''}"
    endpoint = args.endpoint_url or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    start = time.monotonic()
    try:
        client = sync.make_client(args.endpoint_url, args.concurrency)
    except ValueError as exc:  # botocore refuses a malformed endpoint URL when building the client
        _err(f"{exc} (expected e.g. http://127.0.0.1:9000 or https://s3.example.com)")
        return 2
    try:
        cache = sync.DigestCache(sync.DigestCache.default_path())
        plan = sync.plan_sync(client, args.directory, models, bucket, prefix, prune=args.prune, cache=cache)
        if args.dry_run:
            cache.save()
            _print_plan(out, plan, where)
            return 0
        with Progress(TextColumn("uploading"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                      TimeRemainingColumn(), console=console, transient=True,
                      disable=not plan.uploads) as progress:
            task = progress.add_task("upload", total=plan.upload_bytes)
            result = sync.execute(client, plan, concurrency=args.concurrency,
                                  advance=lambda n: progress.advance(task, n), cache=cache)
        cache.save()
    except NoCredentialsError:
        _err("no AWS credentials found (set AWS_PROFILE, or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or use SSO)")
        return 1
    except ClientError as exc:
        error = exc.response.get("Error", {})
        hint = " (does the bucket exist, in this account and endpoint?)" if error.get("Code") in ("NoSuchBucket", "404") else ""
        _err(f"S3 refused {exc.operation_name} on {where}: {error.get('Code')}: {error.get('Message')}{hint}")
        return 1
    except BotoCoreError as exc:
        _err(f"cannot reach S3{f' at {endpoint}' if endpoint else ''}: {exc}")
        return 1
    seconds = time.monotonic() - start

    for key, message in result.failed:
        _err(f"{key}: {message}")
    for key in result.held_back:
        _err(f"{key}: not uploaded because a data file of its model failed; the old config stays")
    out.print(f"pushed {args.directory} to {where}{f' via {endpoint}' if endpoint else ''}")
    out.print(f"uploaded {len(result.uploaded)} ({_human(result.uploaded_bytes)}), "
              f"skipped {len(plan.skipped)} unchanged, deleted {len(result.deleted)}, "
              f"failed {len(result.failed) + len(result.held_back)}, in {seconds:.1f}s")
    if not args.prune:
        if plan.extra:
            out.print(f"note: {len(plan.extra)} remote object(s) under the prefix are not in {args.directory}; --prune deletes them")
    return 1 if result.failed or result.held_back else 0


def _print_plan(out, plan, where: str) -> None:
    from rich.table import Table

    table = Table(title=f"dry run: {where}", show_lines=False)
    table.add_column("action")
    table.add_column("key")
    table.add_column("size", justify="right")
    for upload in plan.uploads:
        table.add_row(f"upload ({upload.reason})", upload.key, _human(upload.file.size))
    for key in plan.deletes:
        table.add_row("delete", key, "")
    if plan.uploads or plan.deletes:
        out.print(table)
    out.print(f"would upload {len(plan.uploads)} ({_human(plan.upload_bytes)}), skip {len(plan.skipped)} unchanged, "
              f"delete {len(plan.deletes)}; nothing changed (dry run)")


def cmd_control(args: argparse.Namespace) -> int:
    from .control import change

    ok, message = change(args.action, args.name, args.url, args.timeout)
    if ok:
        print(message)
        return 0
    _err(message)
    return 1
