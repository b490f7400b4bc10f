"""Small HTTP helpers over ``http.client`` (stdlib: the front server, the health checks, the
smoke test and the notebook's handle all speak plain HTTP/1.1 with JSON bodies)."""

from __future__ import annotations

import http.client
import json
import socket
from typing import Any
from urllib.parse import urlsplit

JSON = "application/json"
# A pooled keep-alive connection the backend closed meanwhile fails in one of these ways; a
# prediction is idempotent, so the request is sent again on a fresh connection.
STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError,
         http.client.CannotSendRequest, http.client.BadStatusLine)  # fmt: skip


def split(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 80


def request(
    url: str,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 30.0,
) -> tuple[int, dict[str, str], bytes]:
    """One request on a new connection: (status, headers, body)."""
    host, port = split(url)
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def get_json(url: str, path: str, timeout: float = 5.0) -> tuple[int, Any]:
    status, _, data = request(url, "GET", path, timeout=timeout)
    return status, _loads(data)


def post_json(
    url: str, path: str, payload: Any, timeout: float = 60.0, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], Any]:
    body = json.dumps(payload).encode()
    status, head, data = request(
        url, "POST", path, body, {"Content-Type": JSON, **(headers or {})}, timeout
    )
    return status, head, _loads(data)


def _loads(data: bytes) -> Any:
    try:
        return json.loads(data) if data else None
    except ValueError:
        return data.decode("utf-8", "replace")


def healthy(url: str, timeout: float = 2.0) -> bool:
    """``GET /ping`` answers 200 (MLflow's scoring server and nbops' front both have it)."""
    try:
        return request(url, "GET", "/ping", timeout=timeout)[0] == 200
    except (OSError, http.client.HTTPException):
        return False


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now (the OS picks it; another process could take it before
    the server binds, which then fails its start and is retried on another port)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def dataframe_split(frame: Any) -> dict[str, Any]:
    """A DataFrame as MLflow's ``dataframe_split`` payload, with Python's exact float text
    (``DataFrame.to_json`` rounds to 10 digits, which would change the inputs)."""
    data = frame.to_dict(orient="split", index=False)
    return {"dataframe_split": {"columns": [str(c) for c in data["columns"]], "data": data["data"]}}
