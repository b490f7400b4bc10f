"""Messages between the thin clients, the executor and the zygote: one JSON object per line
over a Unix socket, with file descriptors passed alongside (``SCM_RIGHTS``) where a process
must write to another's stdout/stderr. Stdlib only: the thin client imports nothing else."""

from __future__ import annotations

import json
import os
import socket
from typing import Any

MAX_FDS = 3
_CHUNK = 65536


class Channel:
    """A connected Unix stream socket that reads and writes whole JSON lines."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._buffer = b""
        self._fds: list[int] = []

    def send(self, message: dict[str, Any], fds: list[int] | None = None) -> None:
        data = (json.dumps(message) + "\n").encode()
        if fds:
            socket.send_fds(self.sock, [data], fds)
        else:
            self.sock.sendall(data)

    def receive(self) -> tuple[dict[str, Any] | None, list[int]]:
        """The next message and the descriptors that came with it; (None, []) at EOF."""
        while b"\n" not in self._buffer:
            data, fds, _flags, _addr = socket.recv_fds(self.sock, _CHUNK, MAX_FDS)
            self._fds += fds
            if not data:
                return None, []
            self._buffer += data
        line, self._buffer = self._buffer.split(b"\n", 1)
        fds, self._fds = self._fds, []
        return json.loads(line), fds

    def pending(self) -> bool:
        """A whole message is already buffered (no need to wait on the socket)."""
        return b"\n" in self._buffer

    def close(self) -> None:
        for fd in self._fds:
            os.close(fd)
        self._fds = []
        self.sock.close()
