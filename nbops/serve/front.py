"""The server in front: a small HTTP/1.1 proxy that always answers with the current champion.

Clients talk to it exactly as to MLflow's scoring server (``POST /invocations`` in MLflow's
formats, ``GET /ping``, ``/health``, ``/version``): the body of every answer is the backend's,
unchanged. It adds the headers ``X-Request-Id`` (the client's, or a new one) and
``X-Model-Version``, logs each request with the version that answered, and has three routes of
its own under ``/nbops/``: ``status`` (GET), ``feedback`` (POST true labels), ``reload``
(POST: look at the registry now instead of at the next poll) and ``flush`` (POST: write the
request log to the end, which ``nbops monitor`` asks before it reads).

Why a proxy and not a restart: the address clients use never changes, and a switch happens
behind it (see :mod:`nbops.serve.router`), so a promotion or a rollback loses no request.
Why this one is hand-rolled: it must add almost nothing to a prediction's latency (benchmark
S1: <= 1.1x MLflow's server alone). One thread per client connection, one keep-alive socket per
thread to the backend, HTTP parsed by splitting lines (no ``email`` header parser, which costs
more than the rest), the answer written in one send, and no parsing of bodies on the request's
path: logging is a queue put.
"""

from __future__ import annotations

import json
import socket
import socketserver
import threading
import time
import uuid
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, BinaryIO, cast

from nbops.serve import wire

if TYPE_CHECKING:
    from collections.abc import Callable

    from nbops.serve.backend import Backend
    from nbops.serve.predlog import PredictionLog
    from nbops.serve.router import Router

MAX_LINE, MAX_HEADERS = 65536, 100
_local = threading.local()


class FrontServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        router: Router,
        log: PredictionLog | None,
        status: Any,  # () -> dict
        reload: Any,  # () -> dict
    ) -> None:
        super().__init__(address, Handler)
        self.router, self.log, self.status, self.reload = router, log, status, reload
        self.requests = 0
        self.failed = 0

    @property
    def url(self) -> str:
        host, port = cast(tuple[str, int], self.server_address[:2])  # an AF_INET server
        return f"http://{host}:{port}"


class Handler(socketserver.StreamRequestHandler):
    disable_nagle_algorithm = True  # small answers must not wait for a delayed ACK
    server: FrontServer

    def handle(self) -> None:
        while True:
            request = _read_request(cast(BinaryIO, self.rfile), cast(BinaryIO, self.wfile))
            if request is None:
                return
            method, path, headers, body, keep = request
            try:
                self._route(method, path, headers, body, keep)
            except OSError:
                return  # the client went away
            if not keep:
                return

    def _route(
        self, method: str, path: str, headers: dict[str, str], body: bytes, keep: bool
    ) -> None:
        self.keep = keep
        if method == "POST" and path == "/invocations":
            self._invoke(headers, body)
        elif method == "GET" and path in ("/ping", "/health"):
            ok = self.server.router.healthy()
            self._send(200 if ok else 503, b"\n" if ok else b"no model deployed\n", "text/plain")
        elif method == "GET" and path == "/nbops/status":
            self._json(200, self.server.status())
        elif method == "POST" and path == "/nbops/feedback":
            self._feedback(body)
        elif method == "POST" and path == "/nbops/reload":
            self._json(200, self.server.reload())
        elif method == "POST" and path == "/nbops/flush":
            log = self.server.log
            self._json(200, {"flushed": log.flush() if log is not None else True})
        else:
            self._forward(method, path, headers, body, {})

    # ---- predictions ------------------------------------------------------------------------

    def _invoke(self, headers: dict[str, str], body: bytes) -> None:
        start = time.perf_counter()
        rid = headers.get("x-request-id") or uuid.uuid4().hex
        log = self.server.log

        def record(status: int, version: int, data: bytes) -> None:
            """Queued before the client has its answer: a flush it asks for next (``nbops
            monitor`` right after the last request) finds the request logged."""
            if log is not None:
                latency = (time.perf_counter() - start) * 1000.0
                ctype = headers.get("content-type", "")
                log.request(time.time(), rid, version, status, latency, ctype, body, data)

        self._forward("POST", "/invocations", headers, body, {"X-Request-Id": rid}, record)

    def _forward(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        body: bytes,
        extra: dict[str, str],
        answered: Callable[[int, int, bytes], None] | None = None,
    ) -> tuple[int, int, bytes] | None:
        """Send the request to the current backend and its answer to the client (calling
        ``answered`` just before); (status, version, body) or None when no backend could
        answer (a 503 was sent)."""
        router = self.server.router
        self.server.requests += 1
        ctype = headers.get("content-type", "")
        for _ in range(3):  # the backend retired under us: the next one is already current
            backend = router.acquire()
            if backend is None:
                break
            try:
                status, rtype, data = _exchange(backend, method, path, ctype, body)
            except OSError:
                continue
            finally:
                router.release(backend)
            if answered is not None:
                answered(status, backend.version, data)
            self._send(status, data, rtype, {"X-Model-Version": str(backend.version), **extra})
            return status, backend.version, data
        self.server.failed += 1
        message = {"error_code": "SERVICE_UNAVAILABLE", "message": "no model server is up"}
        self._json(503, message, extra)
        return None

    def _feedback(self, body: bytes) -> None:
        """``{"request_id": ID, "labels": [...]}``: the true labels of that request's rows."""
        log = self.server.log
        try:
            data = json.loads(body)
            rid, labels = str(data["request_id"]), list(data["labels"])
        except (ValueError, KeyError, TypeError):
            message = 'send {"request_id": "<X-Request-Id of the prediction>", "labels": [...]}'
            self._json(400, {"error_code": "BAD_REQUEST", "message": message})
            return
        if log is None:
            self._json(409, {"error_code": "NO_LOG", "message": "this server logs nothing"})
            return
        recorded = log.feedback(rid, labels)
        log.flush()  # acknowledged labels are on disk
        self._json(200, {"recorded": recorded, "request_id": rid})

    # ---- answers ----------------------------------------------------------------------------

    def _json(self, status: int, data: Any, extra: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(data).encode(), wire.JSON, extra)

    def _send(
        self, status: int, data: bytes, ctype: str, extra: dict[str, str] | None = None
    ) -> None:
        phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else ""
        lines = [f"HTTP/1.1 {status} {phrase}", f"Content-Type: {ctype}"]
        lines.append(f"Content-Length: {len(data)}")
        lines += [f"{k}: {v}" for k, v in (extra or {}).items()]
        if not self.keep:
            lines.append("Connection: close")
        self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + data)


def _read_request(
    rfile: BinaryIO, wfile: BinaryIO
) -> tuple[str, str, dict[str, str], bytes, bool] | None:
    """(method, path, lower-case headers, body, keep-alive), or None at the end of the
    connection or on a request this server cannot read (answered 400 first)."""
    line = rfile.readline(MAX_LINE)
    while line in (b"\r\n", b"\n"):  # stray line ends between requests are allowed
        line = rfile.readline(MAX_LINE)
    if not line:
        return None
    try:
        method, path, version = line.decode("latin-1").split()
        headers = _read_headers(rfile)
        if headers.get("expect", "").lower() == "100-continue":
            wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        body = _read_body(rfile, headers)
    except (ValueError, UnicodeDecodeError):
        wfile.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        return None
    connection = headers.get("connection", "").lower()
    keep = connection != "close" if version == "HTTP/1.1" else connection == "keep-alive"
    return method, path, headers, body, keep


def _read_headers(rfile: BinaryIO) -> dict[str, str]:
    headers: dict[str, str] = {}
    for _ in range(MAX_HEADERS):
        line = rfile.readline(MAX_LINE)
        if line in (b"\r\n", b"\n", b""):
            return headers
        name, sep, value = line.decode("latin-1").partition(":")
        if not sep:
            raise ValueError(f"bad header line {line[:80]!r}")
        headers[name.strip().lower()] = value.strip()
    raise ValueError("too many headers")


def _read_body(rfile: BinaryIO, headers: dict[str, str]) -> bytes:
    if "chunked" in headers.get("transfer-encoding", "").lower():
        parts: list[bytes] = []
        while True:
            size = int(rfile.readline(MAX_LINE).split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while rfile.readline(MAX_LINE) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(parts)
            parts.append(rfile.read(size))
            rfile.readline(MAX_LINE)
    length = int(headers.get("content-length") or 0)
    return rfile.read(length) if length else b""


# ---- the backend side: one keep-alive socket per (thread, backend) -----------------------------


class _Upstream:
    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.sock = socket.create_connection(("127.0.0.1", backend.port), timeout=120)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.rfile = self.sock.makefile("rb")

    def exchange(
        self, method: str, path: str, ctype: str, body: bytes
    ) -> tuple[int, str, bytes, bool]:
        head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.backend.port}\r\n"
        if ctype:
            head += f"Content-Type: {ctype}\r\n"
        head += f"Content-Length: {len(body)}\r\n\r\n"
        self.sock.sendall(head.encode("latin-1") + body)
        line = self.rfile.readline(MAX_LINE)
        if not line:
            raise ConnectionResetError("the backend closed the connection")
        status = int(line.split(None, 2)[1])
        headers = _read_headers(self.rfile)
        close = headers.get("connection", "").lower() == "close" or line.startswith(b"HTTP/1.0")
        framed = "content-length" in headers or "chunked" in headers.get("transfer-encoding", "")
        data = _read_body(self.rfile, headers) if framed else self.rfile.read()  # to the close
        return status, headers.get("content-type", wire.JSON), data, close or not framed

    def close(self) -> None:
        self.rfile.close()
        self.sock.close()


def _exchange(
    backend: Backend, method: str, path: str, ctype: str, body: bytes
) -> tuple[int, str, bytes]:
    """One request to ``backend`` on this thread's connection to it; sent again on a fresh
    connection if the pooled one turns out to be closed (a prediction is idempotent)."""
    pool: dict[int, _Upstream] = getattr(_local, "pool", None) or {}
    _local.pool = pool
    for key in [k for k, up in pool.items() if up.backend.retired]:
        pool.pop(key).close()
    for _ in range(2):
        upstream = pool.get(id(backend))
        fresh = upstream is None or upstream.backend is not backend
        if fresh:
            upstream = pool[id(backend)] = _Upstream(backend)
        assert upstream is not None
        try:
            status, ctype_out, data, close = upstream.exchange(method, path, ctype, body)
        except (OSError, ValueError):
            pool.pop(id(backend), None)
            upstream.close()
            if fresh:
                raise ConnectionError(f"backend v{backend.version} did not answer") from None
            continue
        if close:
            pool.pop(id(backend), None)
            upstream.close()
        return status, ctype_out, data
    raise ConnectionError("unreachable")
