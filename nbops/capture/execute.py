"""Running a cell's code as IPython would: statements, then the last expression's value
(unless the cell ends in ``;``), compiled under the cell's own file name so a traceback and
the record point at the cell. ``%%track`` and a pipeline step's cached cells run through it."""

from __future__ import annotations

import ast
from typing import Any

from IPython.core.error import UsageError as IPythonUsageError

__all__ = ["run_code"]


def run_code(shell: Any, code: str, raw: str, capture: Any = None) -> Any:
    """Execute like IPython: statements, then the last expression's value (unless ``;``)."""
    __tracebackhide__ = True
    filename = shell.compile.cache(code, shell.execution_count, raw_code=raw)
    if capture is not None:
        capture.code_file = (filename, 1)  # where a raising cell stopped, for the record
    tree = shell.compile.ast_parse(code, filename=filename)
    last = None
    if tree.body and isinstance(tree.body[-1], ast.Expr) and not _quiet(raw):
        last = ast.Expression(tree.body.pop().value)
    try:
        compiled = shell.compile(tree, filename, "exec")
    except SyntaxError as exc:
        if "await" in str(exc.msg):
            raise IPythonUsageError(
                "%%track cannot run top-level `await`: put the async code in a function "
                "and call it with asyncio.run(), or drop %%track from this cell"
            ) from None
        raise
    exec(compiled, shell.user_ns)
    if last is not None:
        return eval(shell.compile(last, filename, "eval"), shell.user_ns)
    return None


def _quiet(raw: str) -> bool:
    """A trailing ``;`` hides the last value, as in plain IPython."""
    lines = [ln.split("#", 1)[0].rstrip() for ln in raw.rstrip().splitlines()]
    lines = [ln for ln in lines if ln]
    return bool(lines) and lines[-1].endswith(";")
