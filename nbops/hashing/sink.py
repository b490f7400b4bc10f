"""The byte stream one fingerprint hashes (:class:`Sink`), cut into fixed leaves.

Buffers are cut into fixed 16 MB leaves whose digests enter the stream, so the result never
depends on threading, Arrow chunking or memory layout; big buffers are hashed at the end, on two
threads when there is enough of them (xxhash releases the GIL).
"""

from __future__ import annotations

from typing import Any

import xxhash

from nbops import _cpus
from nbops.hashing.values import canon

VERSION = b"nbops-fingerprint-2"  # bump when the byte stream changes (2: ranges by labels)
_SEGMENT = 16 << 20  # leaf size of the tree hash: part of the definition, never tune it
_PARALLEL_BYTES = 64 << 20  # below this a thread pool costs more than it saves
_Job = tuple[memoryview, ...]  # the pieces of one leaf, hashed in the final pass


class Sink:
    """The byte stream one fingerprint hashes: literals now, big buffers at the end.

    Deferring buffers lets :meth:`hexdigest` hash them on two threads (xxhash releases the GIL)
    once there is enough of them to pay for the pool.
    """

    def __init__(self) -> None:
        self.items: list[bytes | _Job] = []
        self.deferred = 0

    def lit(self, *values: Any) -> None:
        """Append a header literal: small, so hashed inline in stream order."""
        self.items.append(canon(values))

    def stream(self, nbytes: int, *, eager: bool = False, head: tuple[Any, ...] = ()) -> Stream:
        """A byte stream of known length, preceded by ``head`` (a literal) when given.

        ``eager`` hashes as it goes (for transient copies). Items reach the sink on ``close``,
        so streams filled side by side (Arrow chunks, row-major columns) never interleave.
        """
        return Stream(self, eager, [canon(head)] * bool(head) + [canon(("buf", nbytes))])

    def buffers(self, *arrays: Any) -> None:
        """One logical byte stream from uint8 arrays (e.g. Arrow chunks), read in place."""
        out = self.stream(sum(len(a) for a in arrays))
        for a in arrays:
            out.update(memoryview(a))
        out.close()

    def hexdigest(self) -> str:
        """Hash the deferred leaves (on two threads if worth it), then the stream in order."""
        jobs = [item for item in self.items if isinstance(item, tuple)]
        if self.deferred >= _PARALLEL_BYTES and len(jobs) > 1 and _cpus.usable() > 1:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(2, thread_name_prefix="nbops-fp") as pool:
                digests = iter(list(pool.map(_hash_job, jobs)))
        else:
            digests = map(_hash_job, jobs)
        top = xxhash.xxh3_128(VERSION)
        for item in self.items:
            top.update(next(digests) if isinstance(item, tuple) else item)
        return f"xxh128:{top.hexdigest()}"


def _hash_job(pieces: _Job) -> bytes:
    """Digest of one leaf; its pieces are views, so nothing is copied."""
    hasher = xxhash.xxh3_128()
    for piece in pieces:
        hasher.update(piece)
    return hasher.digest()


class Stream:
    """Cuts a byte stream into ``_SEGMENT``-byte leaves, whatever the pieces it is fed."""

    def __init__(self, sink: Sink, eager: bool, head: list[bytes]) -> None:
        self._sink, self._eager, self._head = sink, eager, len(head)
        self._leaves: list[bytes | _Job] = list(head)
        self._pieces: list[memoryview] = []
        self._hasher = xxhash.xxh3_128()
        self._fill = 0

    def update(self, view: memoryview) -> None:
        while len(view):
            take = min(_SEGMENT - self._fill, len(view))
            piece, view = view[:take], view[take:]
            self._fill += take
            if self._eager:
                self._hasher.update(piece)
            else:
                self._pieces.append(piece)
            if self._fill == _SEGMENT:
                self._flush()

    def _flush(self) -> None:
        if self._eager:
            self._leaves.append(self._hasher.digest())
            self._hasher = xxhash.xxh3_128()
        else:
            self._leaves.append(tuple(self._pieces))
            self._sink.deferred += self._fill
        self._pieces, self._fill = [], 0

    def close(self) -> None:
        if self._fill or len(self._leaves) == self._head:  # an empty stream is one empty leaf
            self._flush()
        self._sink.items.extend(self._leaves)
