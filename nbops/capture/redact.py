"""Keeping secrets out of what nbops stores.

A parameter whose name looks like a credential (:data:`~nbops.capture.vocab.SECRET_NAME`) is
stored as ``***redacted***``. Its value would still reach MLflow through the recorded code
(``nbops/cell.py``, ``record.json``) when the cell assigns it literally (``api_key = "sk-..."``),
so string literals bound to such names in the code are redacted too. Tokens, not the AST, are
read: a cell with IPython syntax (``%magic``, ``!cmd``) is not valid Python but tokenizes.
"""

from __future__ import annotations

import io
import re
import tokenize
from collections.abc import Mapping
from typing import Any

from nbops.capture.vocab import REDACTED, SECRET_NAME, is_secret_name

_SKIP = {tokenize.NL, tokenize.NEWLINE, tokenize.COMMENT, tokenize.INDENT, tokenize.DEDENT}
_BINDS = {"=", ":"}  # name = "x", f(name="x"), {"name": "x"}
_QUOTED = repr(REDACTED)
# A secret-looking name followed by = or : somewhere; searched in the lower-cased source (the
# vocabulary is lower case), which is ten times faster than an IGNORECASE search.
_CANDIDATE = re.compile(rf"(?:{SECRET_NAME.pattern})\w*[\"']?\s*[:=]")


def redact_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` with the values of secret-looking names replaced by ``***redacted***``."""
    return {k: REDACTED if is_secret_name(str(k)) else v for k, v in params.items()}


def redact_code(source: str) -> str:
    """``source`` with every string literal bound to a secret-looking name (assignment,
    keyword argument or dict key) replaced by ``'***redacted***'``; otherwise unchanged."""
    if not _CANDIDATE.search(source.lower()):  # the usual cell: nothing to tokenize (~0.1 ms)
        return source
    tokens = _tokens(source)
    spans = []
    for i, tok in enumerate(tokens[:-2]):
        at = i + 1
        if _is(tokens, at, ":") and _is(tokens, at + 2, "="):  # annotated: token: str = "..."
            at += 2
        if not _is(tokens, at, *_BINDS) or at + 1 >= len(tokens):
            continue
        if tokens[at + 1].type != tokenize.STRING or not _secret(tok):
            continue
        end = at + 1
        while end + 1 < len(tokens) and tokens[end + 1].type == tokenize.STRING:
            end += 1  # implicit concatenation: "part one" "part two"
        spans.append((tokens[at + 1].start, tokens[end].end))
    return _replace(source, spans) if spans else source


def _is(tokens: list[tokenize.TokenInfo], at: int, *ops: str) -> bool:
    return at < len(tokens) and tokens[at].type == tokenize.OP and tokens[at].string in ops


def _secret(tok: tokenize.TokenInfo) -> bool:
    if tok.type == tokenize.NAME:
        return is_secret_name(tok.string)
    if tok.type == tokenize.STRING:  # a dict key: "api_key": ...
        return is_secret_name(tok.string.strip("\"'"))
    return False


def _tokens(source: str) -> list[tokenize.TokenInfo]:
    """The significant tokens, as far as the source tokenizes (an unfinished cell still
    gives its first part)."""
    found: list[tokenize.TokenInfo] = []
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type not in _SKIP:
                found.append(tok)
    except (tokenize.TokenError, SyntaxError):
        pass
    return found


def _replace(source: str, spans: list[tuple[tuple[int, int], tuple[int, int]]]) -> str:
    lines = source.splitlines(keepends=True)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))

    def offset(pos: tuple[int, int]) -> int:
        return starts[pos[0] - 1] + pos[1]

    out, last = [], 0
    for start, end in spans:
        out += [source[last : offset(start)], _QUOTED]
        last = offset(end)
    out.append(source[last:])
    return "".join(out)
