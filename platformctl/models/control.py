"""Load and unload models on a Triton in `explicit` model control mode (repository API)."""

from __future__ import annotations

from urllib.parse import urlsplit


def client_for(url: str, timeout: float):
    """tritonclient wants `host:port` plus an ssl flag; people paste `http(s)://host:port[/]`."""
    import tritonclient.http as httpclient  # heavy (gevent); only the commands that talk to Triton pay

    parts = urlsplit(url if "://" in url else f"http://{url}")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url!r}")
    if parts.path.strip("/"):
        raise ValueError(f"give the server root, without a path: {url!r}")
    return httpclient.InferenceServerClient(
        parts.netloc, ssl=parts.scheme == "https", connection_timeout=timeout, network_timeout=timeout
    )


def describe(exc: BaseException) -> str:
    """One line for an error from tritonclient or the network below it."""
    from tritonclient.utils import InferenceServerException

    if isinstance(exc, InferenceServerException):
        message = exc.message() or str(exc)
        status = exc.status()
        return f"{message} (HTTP {status})" if status and str(status) not in message else message
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    return str(exc) or type(exc).__name__


def change(action: str, name: str, url: str, timeout: float) -> tuple[bool, str]:
    try:
        client = client_for(url, timeout)
        if action == "load":
            client.load_model(name)
        else:
            client.unload_model(name)
        ready = client.is_model_ready(name)
    except ValueError as exc:
        return False, str(exc)
    except Exception as exc:  # noqa: BLE001 - network errors come in many types; all are reported
        return False, f"{action} {name!r} on {url} failed: {describe(exc)}"
    if action == "load" and not ready:
        return False, f"{name!r} was loaded but is not ready on {url}"
    if action == "unload" and ready:
        return False, f"{name!r} is still ready on {url} after unload"
    return True, f"{name}: {'loaded and ready' if action == 'load' else 'unloaded'} on {url}"
