"""Just enough of a Kubernetes API client for `models push` to restart a Triton Deployment: a
kubeconfig reader (token, token file, client certificates and `exec` credential plugins such as
the stack's `aws eks get-token`) and JSON requests over the standard library.

The project pins no Kubernetes client library, and `push` needs two calls (PATCH and GET of one
Deployment), so this stays small instead of adding one.
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import subprocess
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


class KubeError(Exception):
    """The cluster could not be reached or refused a request; the message says what to do."""


@dataclass
class KubeApi:
    server: str
    context: str
    headers: dict[str, str] = field(default_factory=dict)
    ssl_context: ssl.SSLContext | None = None
    timeout: float = 30.0

    def request(self, method: str, path: str, body: Any = None,
                content_type: str = "application/json") -> dict[str, Any]:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Accept": "application/json", **self.headers}
        if data is not None:
            headers["Content-Type"] = content_type
        req = urllib.request.Request(self.server.rstrip("/") + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout, context=self.ssl_context) as response:
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            raise KubeError(f"{method} {path}: HTTP {exc.code}: {_status_message(exc)}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise KubeError(f"cannot reach the Kubernetes API at {self.server} (context {self.context}): {reason}") from None


def _status_message(exc: urllib.error.HTTPError) -> str:
    try:
        return json.loads(exc.read()).get("message") or exc.reason
    except (ValueError, AttributeError):
        return str(exc.reason)


def kubeconfig_paths(explicit: str | None) -> list[Path]:
    """--kubeconfig, else each file of $KUBECONFIG, else ~/.kube/config (kubectl's order)."""
    if explicit:
        return [Path(explicit)]
    env = os.environ.get("KUBECONFIG")
    if env:
        return [Path(p) for p in env.split(os.pathsep) if p]
    return [Path.home() / ".kube" / "config"]


def load_config(paths: list[Path]) -> dict[str, Any]:
    """Merged kubeconfig: the first file to define a name or current-context wins (as kubectl)."""
    merged: dict[str, Any] = {"clusters": {}, "users": {}, "contexts": {}, "current-context": None}
    for path in paths:
        if not path.is_file():
            continue
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise KubeError(f"cannot read kubeconfig {path}: {exc}") from None
        merged["current-context"] = merged["current-context"] or doc.get("current-context")
        for kind in ("clusters", "users", "contexts"):
            for entry in doc.get(kind) or []:
                merged[kind].setdefault(entry.get("name"), entry.get(kind[:-1]) or {})
    return merged


def connect(kubeconfig: str | None = None, context: str | None = None) -> KubeApi:
    paths = kubeconfig_paths(kubeconfig)
    config = load_config(paths)
    name = context or config["current-context"]
    where = ", ".join(map(str, paths))
    if not name:
        raise KubeError(f"no Kubernetes context: none is current in {where}; pass --context, or write the stack's "
                        "kubeconfig (`pulumi stack output kubeconfig --show-secrets > FILE`) and pass --kubeconfig FILE")
    if name not in config["contexts"]:
        raise KubeError(f"no context {name!r} in {where} (have: {', '.join(sorted(config['contexts'])) or 'none'})")
    ctx = config["contexts"][name]
    cluster = config["clusters"].get(ctx.get("cluster"))
    if not cluster or not cluster.get("server"):
        raise KubeError(f"context {name!r} names cluster {ctx.get('cluster')!r}, which has no server in {where}")
    user = config["users"].get(ctx.get("user"), {})
    headers, cert = _credentials(user, name)
    return KubeApi(cluster["server"], name, headers, _ssl_context(cluster, cert))


def _credentials(user: dict[str, Any], context: str) -> tuple[dict[str, str], tuple[bytes, bytes] | None]:
    """(headers, client certificate+key PEM) for a kubeconfig user."""
    token = user.get("token")
    if not token and user.get("tokenFile"):
        token = Path(user["tokenFile"]).read_text(encoding="utf-8").strip()
    cert = _pem_pair(user.get("client-certificate-data"), user.get("client-key-data"),
                     user.get("client-certificate"), user.get("client-key"))
    if not token and not cert and user.get("exec"):
        status = exec_credential(user["exec"], context)
        token = status.get("token")
        if status.get("clientCertificateData"):
            cert = (status["clientCertificateData"].encode(), status["clientKeyData"].encode())
    return ({"Authorization": f"Bearer {token}"} if token else {}), cert


def _pem_pair(cert_data, key_data, cert_file, key_file) -> tuple[bytes, bytes] | None:
    if cert_data and key_data:
        return base64.b64decode(cert_data), base64.b64decode(key_data)
    if cert_file and key_file:
        return Path(cert_file).read_bytes(), Path(key_file).read_bytes()
    return None


def exec_credential(spec: dict[str, Any], context: str) -> dict[str, Any]:
    """Run a client-go credential plugin (client.authentication.k8s.io ExecCredential) and return
    its status: {"token": ...} or client certificate data."""
    command = [spec["command"], *(spec.get("args") or [])]
    env = {**os.environ, **{e["name"]: e["value"] for e in spec.get("env") or []}}
    try:
        proc = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise KubeError(f"context {context}: credential plugin `{spec['command']}` did not run: {exc}") from None
    if proc.returncode != 0:
        raise KubeError(f"context {context}: credential plugin `{' '.join(command)}` failed: "
                        f"{proc.stderr.strip() or proc.stdout.strip()}")
    try:
        return json.loads(proc.stdout)["status"]
    except (ValueError, KeyError, TypeError):
        raise KubeError(f"context {context}: credential plugin `{spec['command']}` printed no ExecCredential") from None


def _ssl_context(cluster: dict[str, Any], cert: tuple[bytes, bytes] | None) -> ssl.SSLContext | None:
    if not cluster["server"].startswith("https"):
        return None
    context = ssl.create_default_context()
    if cluster.get("insecure-skip-tls-verify"):
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif cluster.get("certificate-authority-data"):
        context.load_verify_locations(cadata=base64.b64decode(cluster["certificate-authority-data"]).decode())
    elif cluster.get("certificate-authority"):
        context.load_verify_locations(cafile=cluster["certificate-authority"])
    if cert:
        # ssl loads certificate chains from files only: write them to a private temporary directory.
        with tempfile.TemporaryDirectory() as directory:
            cert_file, key_file = Path(directory, "cert.pem"), Path(directory, "key.pem")
            cert_file.write_bytes(cert[0])
            key_file.write_bytes(cert[1])
            context.load_cert_chain(cert_file, key_file)
    return context
