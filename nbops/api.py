"""The Python API for scripts and pipeline steps: ``with nbops.track(...):``.

It uses the same capture as ``%%track``: the code recorded is the ``with`` block's body (read
from the caller's source), the namespace is the caller's (module globals, or a function's
locals), and the record goes through the same spool and writer.
"""

from __future__ import annotations

import ast
import linecache
import sys
import textwrap
from collections.abc import Iterable
from types import FrameType, TracebackType
from typing import Any, Literal

from nbops.capture import Capture, CaptureOptions
from nbops.record import RunRecord
from nbops.session import Session, default_session

__all__ = ["block_source", "default_session", "track"]


class track:
    """Track a block of code as one run.

    >>> with nbops.track("train", params=["n_estimators"]) as run:
    ...     model.fit(X, y)
    >>> run.record.metrics

    ``wait=True`` blocks at the end of the block until the run is in MLflow (pipeline steps use
    it); otherwise the write happens in the background and is flushed at interpreter exit.
    """

    def __init__(
        self,
        name: str | None = None,
        *,
        experiment: str | None = None,
        params: Iterable[str] = (),
        metrics: Iterable[str] = (),
        data: Iterable[str] = (),
        model: str | None = None,
        auto: bool | None = None,
        log_model: bool = True,
        notebook: str | None = None,
        tags: dict[str, str] | None = None,
        source: str = "block",
        wait: bool = False,
        session: Session | None = None,
    ) -> None:
        self.options = CaptureOptions(
            name=name,
            experiment=experiment,
            params=list(params),
            metrics=list(metrics),
            data=list(data),
            model=model,
            auto=bool(auto) if auto is not None else True,
            log_model=log_model,
            notebook=notebook,
            source=source,
            tags=dict(tags or {}),
        )
        self.wait = wait
        self.session = session or default_session()
        if auto is None:  # [tool.nbops] auto / NBOPS_AUTO
            self.options.auto = self.session.config.auto
        self.record: RunRecord | None = None
        self.error: BaseException | None = None
        self._frame: FrameType | None = None
        self._capture: Capture | None = None

    def __enter__(self) -> track:
        frame = sys._getframe(1)
        self._frame = frame
        code, first = block_source(frame)
        self._capture = self.session.capture(code, _frame_ns(frame), self.options, raw=code)
        if first:  # where a raising block stopped, for the record
            self._capture.code_file = (frame.f_code.co_filename, first)
        self._capture.begin()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Literal[False]:
        capture, frame = self._capture, self._frame
        assert capture is not None and frame is not None, "track() used outside `with`"
        capture.ns = _frame_ns(frame)
        self._frame = None  # do not keep the caller's frame (and its locals) alive
        self.record, _ = self.session.commit(capture, exc)
        if self.wait:
            failures = self.session.flush()
            self.error = next((e for r, e in failures if r is self.record), None)
        return False  # an exception in the block propagates unchanged


def _frame_ns(frame: FrameType) -> dict[str, Any]:
    """Module-level code binds globals; a function binds locals (a snapshot in 3.11/3.12)."""
    if frame.f_code.co_name == "<module>":
        return frame.f_globals
    return {**frame.f_globals, **frame.f_locals}


def block_source(frame: FrameType) -> tuple[str, int]:
    """The body of the ``with`` statement being entered in ``frame``, dedented, and the line
    of the file it starts at (("", 0) if unknown)."""
    lines = linecache.getlines(frame.f_code.co_filename, frame.f_globals)
    if not lines:
        return "", 0
    try:
        tree = ast.parse("".join(lines))
    except SyntaxError:
        return "", 0
    line = frame.f_lineno
    best: ast.With | ast.AsyncWith | None = None
    for node in ast.walk(tree):
        if isinstance(node, ast.With | ast.AsyncWith) and node.body:
            header_end = max(node.body[0].lineno - 1, node.lineno)
            inside = node.lineno <= line <= header_end
            if inside and (best is None or node.lineno >= best.lineno):
                best = node
    if best is None:
        return "", 0
    header_end = max(max(_end(i.context_expr), _end(i.optional_vars)) for i in best.items)
    first = min(header_end + 1, best.body[0].lineno)  # a comment before the first statement too
    body = lines[first - 1 : best.body[-1].end_lineno]
    return textwrap.dedent("".join(body)), first


def _end(node: ast.AST | None) -> int:
    line = getattr(node, "end_lineno", None) or getattr(node, "lineno", 0)
    return int(line or 0)
