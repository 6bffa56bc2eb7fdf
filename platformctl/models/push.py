"""Content-based, ordered upload of a Triton model repository to S3 (`platformctl models push`).

What is remote is compared by content, not by time: each object we upload carries the SHA-256 of
its bytes in its metadata (`x-amz-meta-sha256`), because an S3 ETag is only the MD5 of the bytes
for single-part uploads without SSE-KMS; multipart ETags are an MD5 of part MD5s. Objects that some
other tool uploaded (no sha256 metadata) are compared by plain-MD5 ETag when that is possible and
re-uploaded otherwise, which is never wrong, only slower.

Order matters for a Triton that polls the bucket: it (re)loads a model when it sees its files
change, so each model's data files are uploaded first and its config.pbtxt only once all of them
are there; a model whose data failed to upload keeps its old config. With --prune, the config of a
model that is removed is deleted before its data, for the same reason.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Callable, Iterable

import boto3
from boto3.s3.transfer import TransferConfig, create_transfer_manager
from botocore.config import Config
from s3transfer.subscribers import BaseSubscriber

from .validate import CONFIG_FILE, ModelInfo

SHA256_META = "sha256"  # stored as x-amz-meta-sha256
HASH_CHUNK = 8 * 1024 * 1024
DELETE_BATCH = 1000  # S3 DeleteObjects limit


@dataclass(frozen=True)
class LocalFile:
    path: Path
    rel: str  # posix path relative to the repository root, e.g. "add_sub/1/model.onnx"
    size: int
    model: str

    @property
    def is_config(self) -> bool:
        return self.rel == f"{self.model}/{CONFIG_FILE}"


@dataclass
class Upload:
    file: LocalFile
    key: str
    sha256: str | None  # None until hashed (new files are hashed as they are submitted)
    reason: str  # "new" or "changed"


@dataclass
class SyncPlan:
    bucket: str
    prefix: str
    uploads: list[Upload] = field(default_factory=list)
    skipped: list[LocalFile] = field(default_factory=list)
    # Configs of models that are gone locally are deleted before anything else of theirs.
    delete_configs: list[str] = field(default_factory=list)
    delete_data: list[str] = field(default_factory=list)
    # Remote objects under the prefix that DIR does not have, left alone without --prune.
    extra: list[str] = field(default_factory=list)

    @property
    def deletes(self) -> list[str]:
        return self.delete_configs + self.delete_data

    @property
    def upload_bytes(self) -> int:
        return sum(u.file.size for u in self.uploads)


@dataclass
class SyncResult:
    uploaded: list[Upload] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (key, error)
    held_back: list[str] = field(default_factory=list)  # configs not uploaded because data failed

    @property
    def uploaded_bytes(self) -> int:
        return sum(u.file.size for u in self.uploaded)


def normalize_prefix(prefix: str) -> str:
    return prefix.strip("/")


def object_key(prefix: str, rel: str) -> str:
    return f"{prefix}/{rel}" if prefix else rel


def relative_key(prefix: str, key: str) -> str:
    """The inverse of object_key, for keys listed under `prefix/`."""
    return key[len(prefix) + 1:] if prefix else key


def make_client(endpoint_url: str | None, concurrency: int, region: str | None = None):
    """An S3 client sized for `concurrency` parallel requests. Without endpoint_url, boto3 still
    honours AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_S3 and the usual credential chain."""
    config = Config(
        max_pool_connections=max(10, concurrency + 4),
        retries={"mode": "standard", "max_attempts": 5},
        s3={"addressing_style": "auto"},
    )
    return boto3.session.Session().client("s3", endpoint_url=endpoint_url, region_name=region, config=config)


def _hidden(rel: str) -> bool:
    return any(part.startswith(".") for part in rel.split("/"))


def local_files(models: Iterable[ModelInfo], root: Path) -> list[LocalFile]:
    """Every file of every model directory; hidden files and directories (.git, .DS_Store) are
    not part of a model and are not pushed."""
    files = []
    for model in models:
        for path in sorted(model.directory.rglob("*")):
            rel = PurePosixPath(*path.relative_to(root).parts).as_posix()
            if _hidden(rel) or not path.is_file():
                continue
            files.append(LocalFile(path, rel, path.stat().st_size, model.name))
    return files


def file_digest(path: Path, algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    with path.open("rb") as handle:
        while chunk := handle.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class DigestCache:
    """Remembers what was already hashed, so a re-push neither re-reads every local byte nor sends a
    HEAD per object. Local: (size, mtime_ns) -> sha256 per file path. Remote: the ETag an object
    had when we last learned its sha256; an ETag changes whenever an object is rewritten with other
    bytes, so an unchanged ETag means the remembered sha256 still holds. Anything not remembered is
    checked the slow way. Kept in $XDG_CACHE_HOME/platformctl/push-digests.json (never required:
    an unreadable cache is an empty one)."""

    LIMIT = 200_000  # entries per table; the oldest go first

    def __init__(self, path: Path | None):
        self.path = path
        self.local: dict[str, list] = {}
        self.remote: dict[str, list] = {}
        self._lock = threading.Lock()
        if path is not None:
            try:
                data = json.loads(path.read_text())
                self.local, self.remote = dict(data["local"]), dict(data["remote"])
            except (OSError, ValueError, KeyError, TypeError):
                pass

    @staticmethod
    def default_path() -> Path:
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        return Path(base) / "platformctl" / "push-digests.json"

    def sha256(self, path: Path) -> str:
        stat = path.stat()
        name = str(path.resolve())
        with self._lock:
            hit = self.local.get(name)
        if hit and hit[0] == stat.st_size and hit[1] == stat.st_mtime_ns:
            return hit[2]
        digest = file_digest(path, "sha256")
        with self._lock:
            self.local.pop(name, None)
            self.local[name] = [stat.st_size, stat.st_mtime_ns, digest]
        return digest

    def remote_sha256(self, where: str, etag: str, size: int) -> str | None:
        with self._lock:
            hit = self.remote.get(where)
        return hit[2] if hit and hit[0] == etag and hit[1] == size else None

    def remember_remote(self, where: str, etag: str, size: int, sha256: str) -> None:
        with self._lock:
            self.remote.pop(where, None)
            self.remote[where] = [etag, size, sha256]

    def save(self) -> None:
        if self.path is None:
            return
        with self._lock:
            data = {"local": dict(list(self.local.items())[-self.LIMIT:]),
                    "remote": dict(list(self.remote.items())[-self.LIMIT:])}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(data))
            os.replace(tmp, self.path)
        except OSError:
            pass  # a cache that cannot be written only costs time next run


def _where(client, bucket: str, key: str) -> str:
    return f"{client.meta.endpoint_url}|{bucket}|{key}"


def list_remote(client, bucket: str, prefix: str) -> dict[str, dict]:
    remote = {}
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=f"{prefix}/" if prefix else ""):
        for obj in page.get("Contents", []):
            remote[obj["Key"]] = {"size": obj["Size"], "etag": obj.get("ETag", "").strip('"')}
    return remote


def _remote_sha256(client, bucket: str, key: str, local: LocalFile, etag: str, size: int,
                   cache: DigestCache) -> str | None:
    """The sha256 of a remote object, or None when it cannot be known."""
    where = _where(client, bucket, key)
    known = cache.remote_sha256(where, etag, size)
    if known:
        return known
    head = client.head_object(Bucket=bucket, Key=key)
    remote_sha = head.get("Metadata", {}).get(SHA256_META)
    if not remote_sha and etag and "-" not in etag and len(etag) == 32 and etag == file_digest(local.path, "md5"):
        # Uploaded by another tool in one part: the ETag is the MD5 unless SSE-KMS changed it, in
        # which case this does not match and the file is re-uploaded, which is safe.
        remote_sha = cache.sha256(local.path)
    if remote_sha:
        cache.remember_remote(where, head.get("ETag", etag).strip('"'), size, remote_sha)
    return remote_sha


def plan_sync(client, root: Path, models: list[ModelInfo], bucket: str, prefix: str, *,
              prune: bool, workers: int = 8, cache: DigestCache | None = None) -> SyncPlan:
    cache = cache or DigestCache(None)
    prefix = normalize_prefix(prefix)
    plan = SyncPlan(bucket, prefix)
    files = local_files(models, root)
    remote = list_remote(client, bucket, prefix)

    def decide(local: LocalFile) -> Upload | None:
        key = object_key(prefix, local.rel)
        existing = remote.get(key)
        if existing is None:
            return Upload(local, key, None, "new")  # hashed while earlier files upload
        if existing["size"] != local.size:
            return Upload(local, key, None, "changed")
        sha256 = cache.sha256(local.path)
        if _remote_sha256(client, bucket, key, local, existing["etag"], existing["size"], cache) != sha256:
            return Upload(local, key, sha256, "changed")
        return None

    with ThreadPoolExecutor(max_workers=workers) as pool:
        for local, upload in zip(files, pool.map(decide, files)):
            if upload is None:
                plan.skipped.append(local)
            else:
                plan.uploads.append(upload)
    wanted = {object_key(prefix, f.rel) for f in files}
    # Hidden keys are never pushed, so they are not ours to prune either: among them the marker
    # that keeps an empty prefix a valid Triton repository (components/model_repository.py).
    stale = sorted(key for key in remote if key not in wanted and not _hidden(relative_key(prefix, key)))
    if not prune:
        plan.extra = stale
    else:
        local_models = {m.name for m in models}
        for key in stale:
            parts = relative_key(prefix, key).split("/")
            gone_config = len(parts) == 2 and parts[1] == CONFIG_FILE and parts[0] not in local_models
            (plan.delete_configs if gone_config else plan.delete_data).append(key)
    return plan


class _Progress(BaseSubscriber):
    def __init__(self, advance: Callable[[int], None]):
        self._advance = advance

    def on_progress(self, future, bytes_transferred, **kwargs):
        self._advance(bytes_transferred)


def execute(client, plan: SyncPlan, *, concurrency: int = 10, multipart_threshold: int = 8 * 1024 * 1024,
            multipart_chunksize: int = 8 * 1024 * 1024, advance: Callable[[int], None] = lambda n: None,
            cache: DigestCache | None = None) -> SyncResult:
    cache = cache or DigestCache(None)
    result = SyncResult()
    config = TransferConfig(multipart_threshold=multipart_threshold, multipart_chunksize=multipart_chunksize,
                            max_concurrency=concurrency, preferred_transfer_client="classic")
    data = [u for u in plan.uploads if not u.file.is_config]
    configs = [u for u in plan.uploads if u.file.is_config]
    failed_models: set[str] = set()
    with create_transfer_manager(client, config) as manager:
        def run(batch: list[Upload]) -> None:
            futures = []
            for u in batch:
                # Hashing here, in this thread, overlaps with the uploads already submitted.
                u.sha256 = u.sha256 or cache.sha256(u.file.path)
                futures.append((u, manager.upload(str(u.file.path), plan.bucket, u.key,
                                                  extra_args={"Metadata": {SHA256_META: u.sha256}},
                                                  subscribers=[_Progress(advance)])))
            for upload, future in futures:
                try:
                    future.result()
                    result.uploaded.append(upload)
                except Exception as exc:  # noqa: BLE001 - reported per file, the rest goes on
                    result.failed.append((upload.key, _describe(exc)))
                    failed_models.add(upload.file.model)

        run(data)
        ready = []
        for upload in configs:
            if upload.file.model in failed_models:
                result.held_back.append(upload.key)
            else:
                ready.append(upload)
        run(ready)
    if result.uploaded:
        # One LIST tells the ETags S3 gave our uploads; with them the next push needs no HEADs.
        # Sizes must match too, so an object replaced meanwhile by someone else is not vouched for.
        listed = list_remote(client, plan.bucket, plan.prefix)
        for upload in result.uploaded:
            seen = listed.get(upload.key)
            if seen and seen["size"] == upload.file.size:
                cache.remember_remote(_where(client, plan.bucket, upload.key), seen["etag"], seen["size"], upload.sha256)
    for keys in (plan.delete_configs, plan.delete_data):
        for start in range(0, len(keys), DELETE_BATCH):
            _delete(client, plan.bucket, keys[start:start + DELETE_BATCH], result)
    return result


def _delete(client, bucket: str, keys: list[str], result: SyncResult) -> None:
    response = client.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys], "Quiet": True})
    errors = {e["Key"]: f"{e.get('Code')}: {e.get('Message')}" for e in response.get("Errors", [])}
    for key in keys:
        if key in errors:
            result.failed.append((key, errors[key]))
        else:
            result.deleted.append(key)


def _describe(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict) and "Error" in response:
        error = response["Error"]
        return f"{error.get('Code')}: {error.get('Message')}"
    return str(exc) or type(exc).__name__

