"""Talking to a Triton (or any KServe-v2 server): a client from a pasted URL, one-line errors,
request tensors for any model, and load/unload in `explicit` model control mode (repository API)."""

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


def sample_tensor(datatype: str, shape: list[int], name: str):
    """A valid tensor for an input: variable (-1) dimensions become 1; numbers are ones, strings
    are short text ("{}" for a *parameters input, which by convention holds JSON)."""
    import numpy as np
    from tritonclient.utils import triton_to_np_dtype

    concrete = [1 if d < 0 else d for d in shape]
    if datatype == "BYTES":
        text = b"{}" if "parameters" in name.lower() else b"smoke"
        return np.full(concrete, text, dtype=object)
    if datatype == "BOOL":
        return np.zeros(concrete, dtype=bool)  # e.g. `stream: false`
    dtype = triton_to_np_dtype(datatype)
    if dtype is None:
        raise ValueError(f"input {name!r} has datatype {datatype}, which this check cannot generate")
    return np.ones(concrete, dtype=dtype)


def request_tensors(metadata: dict) -> tuple[list, list]:
    """One sample tensor per input of a model's metadata, and every output it declares, all as
    JSON tensors: every KServe-v2 server reads them; binary tensors are a Triton extension."""
    import tritonclient.http as httpclient

    inputs = []
    for spec in metadata.get("inputs", []):
        data = sample_tensor(spec["datatype"], list(spec["shape"]), spec["name"])
        tensor = httpclient.InferInput(spec["name"], list(data.shape), spec["datatype"])
        tensor.set_data_from_numpy(data, binary_data=False)
        inputs.append(tensor)
    outputs = [httpclient.InferRequestedOutput(o["name"], binary_data=False) for o in metadata.get("outputs", [])]
    return inputs, outputs


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
