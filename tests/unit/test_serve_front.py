"""nbops serve's front server against a small real HTTP backend (a thread on a local port, in
place of MLflow's scoring server, whose protocol it speaks): bodies pass unchanged, the version
and request id are added, every request is logged, stale keep-alive connections are retried,
and what clients get wrong is answered with a clear status, never a dropped connection."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from nbops.serve import wire
from nbops.serve.backend import Backend
from nbops.serve.front import FrontServer
from nbops.serve.logread import served
from nbops.serve.predlog import PredictionLog
from nbops.serve.router import Router


class Scoring(BaseHTTPRequestHandler):
    """Answers like MLflow's scoring server: one prediction per row (its first value x 2);
    with ``close_after`` it drops the connection after answering, without saying so (what a
    keep-alive timeout does to an idle pooled connection)."""

    protocol_version = "HTTP/1.1"
    close_after = False

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        rows = body["dataframe_split"]["data"]
        data = json.dumps({"predictions": [row[0] * 2 for row in rows]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        self.close_connection = self.close_after

    def do_GET(self) -> None:
        data = b"3.17.2" if self.path == "/version" else b"\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def backend() -> Iterator[tuple[Backend, type[Scoring]]]:
    handler = type("Handler", (Scoring,), {})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    stub = Backend("m", 7, "sqlite:///unused.db", Path("unused.log"))
    stub.port = server.server_address[1]
    stub.alive = lambda: True  # type: ignore[method-assign]
    yield stub, handler
    server.shutdown()
    server.server_close()


@pytest.fixture
def front(tmp_path: Path, backend: tuple[Backend, type[Scoring]]) -> Iterator[FrontServer]:
    router = Router()
    router.swap(backend[0])
    log = PredictionLog(tmp_path / "log", "m")
    server = FrontServer(("127.0.0.1", 0), router, log, lambda: {"ok": 1}, lambda: {"re": 1})
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()
    log.close()


PAYLOAD = {"dataframe_split": {"columns": ["a", "b"], "data": [[1.5, 2], [3.25, 4]]}}


def test_a_prediction_passes_unchanged_with_version_and_request_id(
    front: FrontServer, tmp_path: Path
) -> None:
    status, head, body = wire.post_json(front.url, "/invocations", PAYLOAD)
    assert status == 200 and body == {"predictions": [3.0, 6.5]}
    assert head["X-Model-Version"] == "7" and len(head["X-Request-Id"]) == 32
    status, head, _ = wire.post_json(
        front.url, "/invocations", PAYLOAD, headers={"X-Request-Id": "mine-1"}
    )
    assert head["X-Request-Id"] == "mine-1"
    assert front.log is not None and front.log.flush()
    logged = served(tmp_path / "log", 1, time.time())
    assert logged.version == 7 and logged.requests == 2 and logged.rows == 4
    assert logged.request_ids[-2:] == ["mine-1", "mine-1"]
    assert logged.inputs["a"].tolist() == [1.5, 3.25, 1.5, 3.25]
    assert logged.predictions == [3.0, 6.5, 3.0, 6.5]


def test_mlflow_routes_pass_through_and_nbops_routes_answer(front: FrontServer) -> None:
    assert wire.request(front.url, "GET", "/version")[2] == b"3.17.2"
    assert wire.healthy(front.url)
    assert wire.get_json(front.url, "/nbops/status") == (200, {"ok": 1})
    assert wire.post_json(front.url, "/nbops/reload", {})[2] == {"re": 1}


def test_a_closed_pooled_connection_is_retried_on_a_fresh_one(
    front: FrontServer, backend: tuple[Backend, type[Scoring]]
) -> None:
    backend[1].close_after = True
    conn = http.client.HTTPConnection(*wire.split(front.url))  # one client connection: one
    body = json.dumps(PAYLOAD).encode()  # front thread, one pooled backend connection
    for _ in range(5):
        conn.request("POST", "/invocations", body, {"Content-Type": "application/json"})
        response = conn.getresponse()
        assert response.status == 200 and json.loads(response.read())["predictions"] == [3.0, 6.5]
    assert front.failed == 0


def test_no_backend_is_a_503_with_a_message(front: FrontServer) -> None:
    front.router.swap(None)  # type: ignore[arg-type]
    status, _, body = wire.post_json(front.url, "/invocations", PAYLOAD)
    assert status == 503 and body["error_code"] == "SERVICE_UNAVAILABLE"
    assert not wire.healthy(front.url)


def test_feedback_is_logged_and_bad_feedback_is_a_400(front: FrontServer, tmp_path: Path) -> None:
    _, head, _ = wire.post_json(front.url, "/invocations", PAYLOAD)
    rid = head["X-Request-Id"]
    status, _, body = wire.post_json(
        front.url, "/nbops/feedback", {"request_id": rid, "labels": [3, 7]}
    )
    assert status == 200 and body == {"recorded": 2, "request_id": rid}  # on disk already
    assert served(tmp_path / "log", 1, time.time()).labels == {(rid, 0): 3, (rid, 1): 7}
    status, _, body = wire.post_json(front.url, "/nbops/feedback", {"labels": [1]})
    assert status == 400 and "request_id" in body["message"]


def test_chunked_and_expect_continue_requests_are_read(front: FrontServer) -> None:
    host, port = wire.split(front.url)
    data = json.dumps(PAYLOAD).encode()
    with socket.create_connection((host, port)) as sock:
        head = "POST /invocations HTTP/1.1\r\nContent-Type: application/json\r\n"
        head += "Transfer-Encoding: chunked\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n"
        chunks = f"{len(data[:10]):x}\r\n".encode() + data[:10] + b"\r\n"
        chunks += f"{len(data[10:]):x}\r\n".encode() + data[10:] + b"\r\n0\r\n\r\n"
        sock.sendall(head.encode() + chunks)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK")
    assert answer.endswith(b'{"predictions": [3.0, 6.5]}')


def test_a_malformed_request_line_is_a_400(front: FrontServer) -> None:
    with socket.create_connection(wire.split(front.url)) as sock:
        sock.sendall(b"NONSENSE\r\n\r\n")
        assert sock.recv(1024).startswith(b"HTTP/1.1 400 Bad Request")
