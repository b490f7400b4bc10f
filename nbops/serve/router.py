"""Which backend answers: the one switch point of a zero-downtime deployment.

A request takes the current backend and marks itself in flight on it (under one lock, so a
switch cannot slip between the two); a switch replaces the current backend only once the new
one is healthy and smoke-tested, and the old one stops only when its last request has been
answered. So every request is answered by a version that was fully up when the request began.
"""

from __future__ import annotations

import threading

from nbops.serve.backend import Backend


class Router:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._current: Backend | None = None

    @property
    def current(self) -> Backend | None:
        return self._current

    def acquire(self) -> Backend | None:
        """The current backend, with one more request in flight (None: nothing deployed)."""
        with self._lock:
            backend = self._current
            if backend is not None:
                backend.enter()
            return backend

    def release(self, backend: Backend) -> None:
        backend.leave()

    def swap(self, backend: Backend) -> Backend | None:
        """Route new requests to ``backend``; return the one it replaces (still running: the
        caller drains and stops it)."""
        with self._lock:
            old, self._current = self._current, backend
            return old

    def healthy(self) -> bool:
        backend = self._current
        return backend is not None and backend.alive()
