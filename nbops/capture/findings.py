"""A secret found in some text: where it is, why, and how to blank it out.

Shared by :mod:`nbops.capture.code_secrets` (code, by AST), :mod:`nbops.capture.code_tokens`
(code that does not parse) and :mod:`nbops.capture.redact` (messages, the replacement itself).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)?")


@dataclass(frozen=True)
class Finding:
    """One secret in the source: characters ``start:end``; ``literal`` when the span is a whole
    string literal (replaced by a quoted placeholder), else a piece of text inside one."""

    start: int
    end: int
    line: int
    why: str
    literal: bool = True
    number: bool = False  # a numeric literal (a PIN): redacted, but promote does not refuse it


def merge_findings(found: list[Finding]) -> list[Finding]:
    """Sorted, without overlaps: a finding inside an earlier one (a key inside a secret
    literal) is covered by it."""
    kept: list[Finding] = []
    for finding in sorted(found, key=lambda f: (f.start, -f.end)):
        if kept and finding.start < kept[-1].end:
            continue  # inside (or overlapping) the one before: already covered
        kept.append(finding)
    return kept


def line_starts(source: str) -> list[int]:
    """Character offset of each line's start, splitting where Python's tokenizer does."""
    starts: list[int] = []
    at = 0
    for match in _LINE.finditer(source):
        if match.start() == len(source) and starts:
            break
        starts.append(at)
        at = match.end()
    return starts
