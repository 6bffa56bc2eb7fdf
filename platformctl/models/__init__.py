"""`platformctl models ...`: validate a Triton model repository, push it to the stack's bucket,
load/unload models on a Triton in `explicit` model control mode, optimise an ONNX model for it
(`optimize`) and measure served models side by side (`perf`)."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from .outputs import OutputsError, deployment, load_outputs, model_location
from .sizes import human_size

# This module builds the parser of every `models` subcommand, so the heavy imports (tritonclient,
# boto3, rich) happen inside the subcommands that use them: `models validate` pays for none.


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("models", help="validate, push, load and unload Triton models",
                                   description=__doc__)
    commands = parser.add_subparsers(dest="models_command", required=True, metavar="SUBCOMMAND")

    validate = commands.add_parser(
        "validate", help="check a model repository offline",
        description="Check DIR offline. With --stack/--outputs and --deployment, also check that it fits "
                    "that Triton deployment (vLLM models use the GPUs each replica holds).")
    validate.add_argument("directory", type=Path, metavar="DIR")
    fit = validate.add_mutually_exclusive_group()
    fit.add_argument("--stack", help="check against this stack's deployment (pulumi stack output)")
    fit.add_argument("--outputs", type=Path, metavar="FILE",
                     help="take the deployment from saved `pulumi stack output --json` (or a plan.json)")
    validate.add_argument("--deployment", help="Triton deployment DIR is meant for (with --stack/--outputs)")
    validate.set_defaults(func=cmd_validate)

    push = commands.add_parser(
        "push", help="upload a model repository to S3 by content, configs last",
        description="Validate DIR, then upload what changed to s3://BUCKET/PREFIX/. Unchanged files are "
                    "skipped, each model's config.pbtxt goes up after its data files, and nothing is "
                    "deleted unless --prune. With --stack/--outputs, a deployment that reads its repository "
                    "only at start (llm mode, model control none or explicit) is then restarted through the "
                    "Kubernetes API (like `kubectl rollout restart`) and push waits until its new pods are "
                    "ready and, for llm, its OpenAI /v1/models lists the pushed models.")
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
    restart = push.add_argument_group("restart after the push (deployments that read their models only at start)")
    restart.add_argument("--no-restart", action="store_true",
                         help="upload only; the deployment keeps serving its old models until restarted")
    restart.add_argument("--kubeconfig", metavar="FILE", help="kubeconfig (default: $KUBECONFIG or ~/.kube/config); "
                         "the stack's: pulumi stack output kubeconfig --show-secrets > FILE")
    restart.add_argument("--context", help="kubeconfig context (default: the current one)")
    restart.add_argument("--openai-url", help="OpenAI base URL to check /models on (default: the deployment's "
                         "externalOpenaiUrl or openaiUrl output), e.g. http://localhost:9000/v1 via port-forward")
    restart.add_argument("--restart-timeout", type=float, metavar="SECONDS",
                         help="give up waiting after this long (default: the Deployment's progress deadline per replica)")
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


def _target_deployment(args: argparse.Namespace) -> tuple[str, dict] | None:
    """The Triton deployment (name, outputs) DIR goes to, when the target comes from outputs."""
    if getattr(args, "bucket", None) or not (args.stack or args.outputs):
        return None
    return deployment(load_outputs(args.stack, args.outputs), args.deployment)


def fit_problems(models, target: tuple[str, dict] | None) -> list:
    """What makes DIR wrong for its deployment (see validate.deployment_problems)."""
    from .validate import deployment_problems

    if target is None:
        return []
    name, values = target
    gpus = values.get("gpusPerReplica")
    if not isinstance(gpus, int):
        return []  # outputs of a stack deployed before gpusPerReplica was exported
    return deployment_problems(models, name, gpus)


def cmd_validate(args: argparse.Namespace) -> int:
    from .validate import validate_repository

    if args.deployment and not (args.stack or args.outputs):
        _err("--deployment goes with --stack or --outputs")
        return 2
    try:
        target = _target_deployment(args)
    except OutputsError as exc:
        _err(str(exc))
        return 2
    models, problems = validate_repository(args.directory)
    problems += fit_problems(models, target)
    if problems:
        for problem in problems:
            print(problem)
        print(f"{args.directory}: {len(problems)} problem{'s' * (len(problems) != 1)}", file=sys.stderr)
        return 1
    names = ", ".join(m.name for m in models)
    fits = f", fits deployment {target[0]}" if target else ""
    print(f"{args.directory}: {len(models)} model{'s' * (len(models) != 1)} valid ({names}){fits}")
    return 0


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


def _push_inputs(args: argparse.Namespace):
    """(bucket, prefix, target deployment, models) of a push, or the exit code once the reason
    it cannot go ahead is printed: bad arguments (2), an invalid repository (1)."""
    from .validate import validate_repository

    if args.concurrency < 1:
        _err("--concurrency must be >= 1")
        return 2
    try:
        bucket, prefix = _resolve_target(args)
        target = _target_deployment(args)
    except OutputsError as exc:
        _err(str(exc))
        return 2
    models, problems = validate_repository(args.directory)
    problems += fit_problems(models, target)
    if problems:
        for problem in problems:
            print(problem, file=sys.stderr)
        _err(f"{args.directory} is not a valid model repository{f' for deployment {target[0]}' if target else ''} ({len(problems)} problem{'s' * (len(problems) != 1)}); nothing uploaded")
        return 1
    return bucket, prefix, target, models


def _upload(args: argparse.Namespace, client, models, bucket: str, prefix: str, where: str, target, out, console):
    """Plan the sync and, unless --dry-run (then None, after printing the plan), run it with a
    progress bar: (plan, result). boto3 errors propagate."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

    from . import push as sync

    cache = sync.DigestCache(sync.DigestCache.default_path())
    plan = sync.plan_sync(client, args.directory, models, bucket, prefix, prune=args.prune, cache=cache)
    if args.dry_run:
        cache.save()
        _print_plan(out, plan, where)
        _print_restart_plan(out, args, target, bool(plan.uploads or plan.deletes))
        return None
    with Progress(TextColumn("uploading"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                  TimeRemainingColumn(), console=console, transient=True,
                  disable=not plan.uploads) as progress:
        task = progress.add_task("upload", total=plan.upload_bytes)
        result = sync.execute(client, plan, concurrency=args.concurrency,
                              advance=lambda n: progress.advance(task, n), cache=cache)
    cache.save()
    return plan, result


def cmd_push(args: argparse.Namespace) -> int:
    # Imported here so `models validate` does not pay for boto3.
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError
    from rich.console import Console

    from ..aws_errors import NO_CREDENTIALS
    from . import push as sync

    checked = _push_inputs(args)
    if isinstance(checked, int):
        return checked
    bucket, prefix, target, models = checked
    out = Console(soft_wrap=True)  # long notes stay one line (and greppable)
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
        done = _upload(args, client, models, bucket, prefix, where, target, out, Console(stderr=True))
    except NoCredentialsError:
        _err(NO_CREDENTIALS)
        return 1
    except ClientError as exc:
        error = exc.response.get("Error", {})
        hint = " (does the bucket exist, in this account and endpoint?)" if error.get("Code") in ("NoSuchBucket", "404") else ""
        _err(f"S3 refused {exc.operation_name} on {where}: {error.get('Code')}: {error.get('Message')}{hint}")
        return 1
    except BotoCoreError as exc:
        _err(f"cannot reach S3{f' at {endpoint}' if endpoint else ''}: {exc}")
        return 1
    if done is None:
        return 0  # dry run
    plan, result = done
    seconds = time.monotonic() - start
    return _report_push(args, target, models, plan, result, f"{where}{f' via {endpoint}' if endpoint else ''}", seconds, out)


def _report_push(args: argparse.Namespace, target, models, plan, result, where: str, seconds: float, out) -> int:
    """What the push did; then make it served (after_push), unless something failed (1)."""
    for key, message in result.failed:
        _err(f"{key}: {message}")
    for key in result.held_back:
        _err(f"{key}: not uploaded because a data file of its model failed; the old config stays")
    out.print(f"pushed {args.directory} to {where}")
    out.print(f"uploaded {len(result.uploaded)} ({human_size(result.uploaded_bytes)}), "
              f"skipped {len(plan.skipped)} unchanged, deleted {len(result.deleted)}, "
              f"failed {len(result.failed) + len(result.held_back)}, in {seconds:.1f}s")
    if not args.prune:
        if plan.extra:
            out.print(f"note: {len(plan.extra)} remote object(s) under the prefix are not in {args.directory}; --prune deletes them")
    if result.failed or result.held_back:
        return 1
    return after_push(args, target, models, bool(result.uploaded or result.deleted), out)


def _restart_command(name: str, values: dict) -> tuple[str, str, str]:
    namespace = values.get("namespace", "?")
    deployment_name = values.get("deployment") or values.get("service") or name
    return namespace, deployment_name, f"kubectl -n {namespace} rollout restart deployment/{deployment_name}"


def _print_restart_plan(out, args, target, changed: bool) -> None:
    from .rollout import fixed_at_start

    if target and changed and fixed_at_start(target[1]) and not args.no_restart:
        namespace, deployment_name, _ = _restart_command(*target)
        out.print(f"would then restart deployment {namespace}/{deployment_name} (it reads its models only at start)")


def after_push(args: argparse.Namespace, target, models, changed: bool, out) -> int:
    """Make what was pushed served: nothing to do for a polling deployment; otherwise restart it
    (or say exactly what to run)."""
    from .rollout import fixed_at_start

    if target is None:
        if changed:
                out.print("note: a Triton deployment that does not poll (llm mode, model control none or explicit) serves "
                      "only what it loaded at start: restart it (kubectl -n NAMESPACE rollout restart deployment/NAME), "
                      "or push with --stack/--outputs and --deployment and push restarts it")
        return 0
    name, values = target
    namespace, deployment_name, command = _restart_command(name, values)
    fixed = fixed_at_start(values)
    if fixed is None:
        out.print(f"note: the outputs do not say whether deployment {name} polls its repository; if it does not, "
                  f"run `{command}` to serve what was pushed")
    elif not fixed:
        out.print(f"deployment {name} polls its repository: it picks the changes up within its poll interval")
    elif not changed:
        out.print(f"nothing changed: deployment {name} keeps serving what it has")
    elif args.no_restart:
        out.print(f"not restarted (--no-restart): deployment {name} reads its models only at start and serves the old "
                  f"set until `{command}`")
    else:
        return _restart_and_check(args, name, values, models, out)
    return 0


def _restart_and_check(args: argparse.Namespace, name: str, values: dict, models, out) -> int:
    from datetime import datetime, timezone

    from . import rollout
    from .kube import KubeError, connect

    namespace, deployment_name, command = _restart_command(name, values)
    try:
        api = connect(args.kubeconfig, args.context)
        out.print(f"restarting deployment {namespace}/{deployment_name} on {api.server} (context {api.context}): "
                  "Triton reads its models only at start")
        patched = rollout.restart(api, namespace, deployment_name, datetime.now(timezone.utc))
        if patched.get("spec", {}).get("strategy", {}).get("type") == "Recreate":
            out.print("  strategy Recreate: it serves nothing until the new pod has loaded every model")
        budget = args.restart_timeout or rollout.wait_budget(patched)
        state = rollout.wait_rollout(api, namespace, deployment_name, budget, lambda m: out.print(f"  {m}"))
    except KubeError as exc:
        _err(f"{exc}\nthe models are uploaded, but deployment {name} still serves its old set: run `{command}`")
        return 1
    if state.failed:
        _err(f"{state.message}: the new pods did not become ready (Triton stays unready while a model fails to load) "
             f"and the old ones keep serving; see `kubectl -n {namespace} describe deployment/{deployment_name}` and "
             "the new pod's log")
        return 1
    openai_url = args.openai_url or values.get("externalOpenaiUrl") or values.get("openaiUrl")
    if values.get("mode") != "llm" or not openai_url:
        return 0
    listed, message = rollout.check_listed(openai_url, [m.name for m in models])
    if listed is False:
        _err(message)
        return 1
    if listed is None:
        out.print(f"note: {message}; the rollout finished, and a pod becomes ready only once it has loaded every "
                  f"model. To see the list: kubectl -n {namespace} port-forward svc/{values.get('service', name)} "
                  "9000:9000, then push again with --openai-url http://localhost:9000/v1 or curl it")
        return 0
    out.print(message)
    return 0


def _print_plan(out, plan, where: str) -> None:
    from rich.table import Table

    table = Table(title=f"dry run: {where}", show_lines=False)
    table.add_column("action")
    table.add_column("key")
    table.add_column("size", justify="right")
    for upload in plan.uploads:
        table.add_row(f"upload ({upload.reason})", upload.key, human_size(upload.file.size))
    for key in plan.deletes:
        table.add_row("delete", key, "")
    if plan.uploads or plan.deletes:
        out.print(table)
    out.print(f"would upload {len(plan.uploads)} ({human_size(plan.upload_bytes)}), skip {len(plan.skipped)} unchanged, "
              f"delete {len(plan.deletes)}; nothing changed (dry run)")


def cmd_control(args: argparse.Namespace) -> int:
    from .control import change

    ok, message = change(args.action, args.name, args.url, args.timeout)
    if ok:
        print(message)
        return 0
    _err(message)
    return 1
