"""Secrets in a cell that does not parse (IPython syntax: ``%time``, ``!cmd``), by its tokens.

:mod:`nbops.capture.code_secrets` finds secret literals by AST. A cell with IPython syntax is
not Python, but it tokenizes: :func:`by_value` finds, among its string tokens, the literals its
Python translation showed to be secret; :func:`by_tokens` looks for ``NAME = "..."``-shaped
bindings when there is no translation.
"""

from __future__ import annotations

import ast
import io
import tokenize
from collections.abc import Iterator, Mapping

from nbops.capture.findings import Finding, line_starts
from nbops.capture.vocab import is_secret_name

_SKIP_TOKENS = {tokenize.NL, tokenize.NEWLINE, tokenize.COMMENT, tokenize.INDENT, tokenize.DEDENT}


def by_value(source: str, secret: Mapping[object, str]) -> list[Finding]:
    """String tokens of ``source`` whose value (or, for f-strings, text) is a key of
    ``secret``: the literals the cell's Python translation binds to secret names."""
    found = []
    for tok, start, end in _string_tokens(source):
        why = secret.get(tok.string) or secret.get(_literal(tok.string))
        if why:
            found.append(Finding(start, end, tok.start[0], why))
    return found


def _literal(text: str) -> object:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None


def by_tokens(source: str) -> list[Finding]:
    """For source that does not parse: ``NAME = "..."``, ``NAME += "..."``, ``NAME: "..."``,
    ``"name": "..."`` (implicitly concatenated literals included)."""
    tokens = list(_significant(source))
    starts = line_starts(source)
    found = []
    for i, tok in enumerate(tokens[:-1]):
        at = i + 1
        if _op(tokens, at, ":") and _op(tokens, at + 2, "="):  # annotated: token: str = "..."
            at += 2
        if not _op(tokens, at, "=", ":", "+=", ":=") or at + 1 >= len(tokens):
            continue
        if tokens[at + 1].type != tokenize.STRING or not _token_secret(tok):
            continue
        end = at + 1
        while end + 1 < len(tokens) and tokens[end + 1].type == tokenize.STRING:
            end += 1
        first, last = tokens[at + 1], tokens[end]
        start = starts[first.start[0] - 1] + first.start[1]
        stop = starts[last.end[0] - 1] + last.end[1]
        found.append(Finding(start, stop, first.start[0], f"bound to {tok.string!r}"))
    return found


def _significant(source: str) -> Iterator[tokenize.TokenInfo]:
    """Tokens as far as the source tokenizes (an unfinished cell still gives its first part)."""
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type not in _SKIP_TOKENS:
                yield tok
    except (tokenize.TokenError, SyntaxError):
        return


def _string_tokens(source: str) -> Iterator[tuple[tokenize.TokenInfo, int, int]]:
    starts = line_starts(source)
    for tok in _significant(source):
        if tok.type == tokenize.STRING:
            start = starts[tok.start[0] - 1] + tok.start[1]
            yield tok, start, starts[tok.end[0] - 1] + tok.end[1]


def _op(tokens: list[tokenize.TokenInfo], at: int, *ops: str) -> bool:
    return at < len(tokens) and tokens[at].type == tokenize.OP and tokens[at].string in ops


def _token_secret(tok: tokenize.TokenInfo) -> bool:
    if tok.type == tokenize.NAME:
        return is_secret_name(tok.string)
    if tok.type == tokenize.STRING:  # a dict key: "api_key": ...
        return is_secret_name(tok.string.strip("\"'"))
    return False
