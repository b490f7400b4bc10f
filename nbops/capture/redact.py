"""The one redaction pass: every string nbops stores goes through here first.

What counts as a secret is data in :mod:`nbops.capture.vocab`: names (:data:`SECRET_TERMS`,
``key`` as a part), value patterns (:data:`SECRET_VALUES`: URL credentials, bearer tokens,
known key prefixes) and the values of environment variables whose names look secret. The API:

* :func:`redact_record` - a whole :class:`~nbops.record.RunRecord`, in place: params at any
  depth, tags, the error, warnings, code, data notes and the run name. Idempotent, so the
  capture and the spool may both call it.
* :func:`redact_value` / :func:`redact_params` - a value under a name: a secret-looking name
  hides the whole value; dict keys are names too, strings are scrubbed.
* :func:`scrub_text` - a message: value patterns, ``password=...``-style pairs, and known
  environment values (an exception that interpolates ``os.environ["DB_PASSWORD"]``).
* :func:`redact_code` - source code: literals bound to secret names (see
  :mod:`nbops.capture.code_secrets`), value patterns and environment values.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from nbops.capture.code_secrets import find_secrets, value_findings
from nbops.capture.findings import Finding, merge_findings
from nbops.capture.vocab import (
    ENV_MIN_LENGTH,
    ENV_NOT_SECRET,
    REDACTED,
    is_secret_key,
    is_secret_name,
    name_parts,
)

if TYPE_CHECKING:
    from nbops.record import RunRecord

__all__ = [
    "REDACTED",
    "env_name",
    "redact_code",
    "redact_params",
    "redact_record",
    "redact_value",
    "scrub_text",
    "secret_env_values",
    "secret_path",
]

_QUOTED = repr(REDACTED)
# name=value / name: value / "name": "value" in free text (messages, reprs, config strings)
# (the value is a lookahead, so "failed: password=x" still finds the pair inside "failed"'s value)
_PAIR = re.compile(
    r"""(?P<name>[A-Za-z_][\w.-]*)["']?\s*[=:]\s*"""
    r"""(?=(?P<value>'[^'\n]*'|"[^"\n]*"|[^\s'",;&)}\]]+))"""
)
_NOT_A_NAME = ("Error", "Exception", "Warning")  # "TokenError: ..." is an exception's type
_PLACEHOLDERS = (None, "", True, False)  # a value under a secret name that holds no secret


def redact_record(record: RunRecord, *, code: bool = True) -> RunRecord:
    """Redact every stored string of ``record`` in place (``code=False``: the caller already
    redacted the code, with its Python translation); returns it."""
    record.params = redact_params(record.params)
    record.tags = {str(k): str(redact_value(v, str(k))) for k, v in record.tags.items()}
    record.error = scrub_text(record.error) if record.error else record.error
    record.warnings = [scrub_text(w) for w in record.warnings]
    record.name = scrub_text(record.name) if record.name else record.name
    record.description = scrub_text(record.description)
    record.estimators = {
        var: {**spec, "params": redact_params(spec.get("params") or {})}
        for var, spec in record.estimators.items()
    }
    for ref in record.data:
        ref.name, ref.note = scrub_text(ref.name), scrub_text(ref.note)
    if code and record.code:
        redacted = redact_code(record.code)
        if redacted != record.code:
            record.code = redacted
            record.code_hash = "sha256:" + hashlib.sha256(redacted.encode()).hexdigest()
    return record


def redact_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` with the value of every secret-looking name, at any depth, redacted."""
    return {k: redact_value(v, str(k)) for k, v in params.items()}


def redact_value(value: Any, name: str = "") -> Any:
    """``value`` as it may be stored under ``name``: all of it hidden when the name looks
    secret; otherwise dicts (whose keys are names), lists and strings are looked into."""
    if name and is_secret_name(name):
        return REDACTED
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, Mapping):
        return {k: REDACTED if is_secret_key(str(k)) else redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(redact_value(v) for v in value)
    return value


def scrub_text(text: str) -> str:
    """Free text (an error message, a warning, a string value) without secrets."""
    if not text:
        return text
    text = _replace(text, [*value_findings(text), *_env_findings(text)])
    return _replace(text, [f for m in _PAIR.finditer(text) if (f := _pair(m)) is not None])


def redact_code(source: str, python: str | None = None) -> str:
    """``source`` with secret literals replaced by ``'***redacted***'`` and secret text inside
    other literals by ``***redacted***``; otherwise unchanged. ``python``: the cell translated
    from IPython syntax, used when ``source`` itself does not parse."""
    found = find_secrets(source, python) + _env_findings(source)
    return _replace(source, merge_findings(found)) if found else source


def secret_env_values(environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """Values of environment variables whose names look secret (longest first)."""
    env = os.environ if environ is None else environ
    return _secret_values(tuple(env.items()))


@functools.lru_cache(maxsize=8)
def _secret_values(items: tuple[tuple[str, str], ...]) -> tuple[str, ...]:
    values = {
        value
        for name, value in items
        if len(value) >= ENV_MIN_LENGTH and name not in ENV_NOT_SECRET and is_secret_name(name)
    }
    return tuple(sorted(values, key=lambda v: (-len(v), v)))


def secret_path(value: Any, name: str = "", path: tuple[str, ...] = ()) -> list[str] | None:
    """The key path to the first secret in ``value`` stored under ``name`` (a secret-looking
    name holding more than a placeholder, or a string that looks like a credential), or None.
    What must never reach a file that gets committed (promote, ``params.yaml``)."""
    path = path or (name,)
    secret = is_secret_key(name) if len(path) > 1 else is_secret_name(name)
    if name and secret and value not in _PLACEHOLDERS:
        return list(path)
    if isinstance(value, Mapping):
        items = [(str(k), v) for k, v in value.items()]
    elif isinstance(value, list | tuple):
        items = [("", v) for v in value]
    else:
        found = isinstance(value, str) and next(value_findings(value), None) is not None
        return list(path) if found else None
    for i, (key, item) in enumerate(items):
        inner = secret_path(item, key, (*path, key or str(i)))
        if inner is not None:
            return inner
    return None


def env_name(path: list[str]) -> str:
    """``["db", "password"]`` -> ``DB_PASSWORD``: the environment variable a fix suggests."""
    parts = [part for key in path for part in name_parts(key)]
    return "_".join(parts).upper() or "SECRET"


def _pair(match: re.Match[str]) -> Finding | None:
    """The value of a ``name=value`` pair whose name looks secret (inside its quotes)."""
    name, value = match.group("name"), match.group("value")
    if name.endswith(_NOT_A_NAME) or not is_secret_name(name.rpartition(".")[2]):
        return None
    start, end = match.span("value")
    if value[:1] in ("'", '"') and len(value) > 1:
        start, end = start + 1, end - 1
    if value.strip("'\"") == REDACTED or start >= end:
        return None
    return Finding(start, end, 0, "pair", literal=False)


def _env_findings(text: str) -> list[Finding]:
    pattern = _env_pattern(secret_env_values())
    if pattern is None:
        return []
    return [Finding(m.start(), m.end(), 0, "env", literal=False) for m in pattern.finditer(text)]


@functools.lru_cache(maxsize=8)
def _env_pattern(values: tuple[str, ...]) -> re.Pattern[str] | None:
    return re.compile("|".join(map(re.escape, values))) if values else None


def _replace(text: str, findings: list[Finding]) -> str:
    if not findings:
        return text
    out, last = [], 0
    for finding in merge_findings(findings):
        out += [text[last : finding.start], _QUOTED if finding.literal else REDACTED]
        last = finding.end
    out.append(text[last:])
    return "".join(out)
