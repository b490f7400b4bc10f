"""Reading a cell's namespace before and after it runs: data, files, estimators, metrics.

The scan (:mod:`nbops.capture.scan`) says which names and paths to look at; this module looks
at their values. Everything here runs on the cell's critical path, so it touches only the names
the cell involves (plus an ``id()`` snapshot of the namespace) and never imports pandas, numpy
or scikit-learn itself: if the user has such objects, those libraries are already loaded.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nbops.capture.scan import CellScan
from nbops.capture.vocab import REDACTED, is_metric_name, is_secret_name
from nbops.errors import FingerprintError
from nbops.hashing.files import FileHashCache, cached_fingerprint, fingerprint_file
from nbops.hashing.frames import describe, fingerprint, is_data
from nbops.project_paths import escape
from nbops.record import STAT_PREFIX, DataRef, Role, RunRecord

_SKIP = {"In", "Out", "exit", "quit", "get_ipython"}


@dataclass
class Before:
    """What the namespace and the named files looked like before the cell ran."""

    ids: dict[str, int] = field(default_factory=dict)
    data: dict[str, DataRef] = field(default_factory=dict)
    files: dict[str, tuple[int, int] | None] = field(default_factory=dict)


def user_names(ns: Mapping[str, Any]) -> Iterable[str]:
    return (k for k in ns if not k.startswith("_") and k not in _SKIP)


def snapshot(ns: Mapping[str, Any], scan: CellScan, extra: Iterable[str]) -> Before:
    """Fingerprint the data the cell will read, and stat the files it names."""
    before = Before(ids={k: id(ns[k]) for k in user_names(ns)})
    for name in sorted(scan.free | set(extra)):
        if name in ns and is_data(ns[name]):
            before.data[name] = data_ref(name, ns[name], "input")
    before.files = {p: _stat(p) for p in scan.paths}
    return before


def data_ref(name: str, obj: Any, role: Role) -> DataRef:
    """Describe and fingerprint one object; an unhashable one is recorded, never an error."""
    try:
        kind, shape, columns = describe(obj)
    except Exception:  # describing must never break the cell
        kind, shape, columns = type(obj).__name__, None, None
    ref = DataRef(name=name, role=role, kind=kind, shape=shape, columns=columns)
    try:
        ref.fingerprint = fingerprint(obj)
    except FingerprintError as exc:
        ref.note = exc.message
    except Exception as exc:  # an odd object's buffers: record it as unhashed
        ref.note = f"{type(exc).__name__}: {exc}"
    return ref


def changed_data(
    ns: Mapping[str, Any], scan: CellScan, before: Before, extra: Iterable[str]
) -> list[DataRef]:
    """Data the cell created, rebound or changed in place (by identity, then by content)."""
    candidates = set(scan.stored) | set(before.data) | set(extra)
    candidates |= {k for k in user_names(ns) if before.ids.get(k) != id(ns[k])}
    outputs = []
    for name in sorted(candidates):
        if name not in ns or not is_data(ns[name]):
            continue
        ref = data_ref(name, ns[name], "output")
        prior = before.data.get(name)
        if prior is None or ref.fingerprint is None or ref.fingerprint != prior.fingerprint:
            outputs.append(ref)
    return outputs


def _stat(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return (st.st_size, st.st_mtime_ns) if os.path.isfile(path) else None


def file_refs(
    before: Before, root: Path, cache: FileHashCache | None, limit: int | None = None
) -> list[DataRef]:
    """Files named in the cell: read (existed, unchanged) or written (new or modified).

    A file is hashed (md5) here, on the cell's thread, only up to ``limit`` bytes (config
    ``hash_max_mb``) unless the hash cache already knows it; a bigger one gets a size+mtime
    identity (``stat:<size>-<mtime_ns>``) and a note, and :func:`complete_file_hashes` can hash
    it later off the cell's thread. A file that resolves outside the project is not read.
    """
    refs = []
    for path, prior in before.files.items():
        now = _stat(path)
        if now is None:
            continue
        role: Role = "input" if prior == now else "output"
        ref = DataRef(name=relative_name(path, root), role=role, kind="file", size=now[0])
        ref.fingerprint, ref.note = _file_identity(path, now, root, cache, limit)
        refs.append(ref)
    return refs


def _file_identity(
    path: str, now: tuple[int, int], root: Path, cache: FileHashCache | None, limit: int | None
) -> tuple[str | None, str]:
    outside = escape(Path(path), root)
    if outside is not None:
        shown = relative_name(path, root)
        return None, (
            f"not hashed: {outside.describe(shown)}; copy the file into the project to track "
            "its content"
        )
    try:
        if limit is None or now[0] <= limit:
            return fingerprint_file(path, cache), ""
        cached = cached_fingerprint(path, cache)
    except OSError as exc:
        return None, f"unreadable: {exc.strerror or exc}"
    if cached is not None:
        return cached, ""
    size, mtime_ns = now
    return stat_identity(size, mtime_ns), (
        f"not hashed on the cell's thread: {_size(size)} is above hash_max_mb = "
        f"{limit / 2**20:.4g} ([tool.nbops]); identified by size and modification time"
    )


def _size(n: int) -> str:
    return f"{n / 2**30:.3g} GB" if n >= 2**30 else f"{n / 2**20:.3g} MB"


def stat_identity(size: int, mtime_ns: int) -> str:
    return f"{STAT_PREFIX}{size}-{mtime_ns}"


def complete_file_hashes(
    record: RunRecord, root: Path, cache: FileHashCache | None, limit: int | None = None
) -> int:
    """Replace the size+mtime identities of ``record``'s files by their md5, for files still
    unchanged (same size and mtime) and up to ``limit`` bytes; returns how many were hashed.

    For the writer thread, before delivery: the cell never waits for it. The hash also lands
    in the cache, so the next cell that names the file gets the md5 at once.
    """
    done = 0
    for ref in record.data:
        fingerprint = ref.fingerprint or ""
        if ref.kind != "file" or not fingerprint.startswith(STAT_PREFIX):
            continue
        path = Path(ref.name) if Path(ref.name).is_absolute() else root / ref.name
        now = _stat(str(path))
        too_big = limit is not None and now is not None and now[0] > limit
        if now is None or stat_identity(*now) != fingerprint or too_big:
            continue
        try:
            ref.fingerprint = fingerprint_file(path, cache)
        except OSError:
            continue
        ref.note = "hashed after the cell ran (above hash_max_mb)"
        done += 1
    return done


def relative_name(path: str, root: Path) -> str:
    """The path as the user wrote it, relative to the project root when inside it."""
    for full in (Path(os.path.abspath(path)), Path(path).resolve()):
        try:
            return full.relative_to(root).as_posix()
        except ValueError:
            continue
    return Path(path).resolve().as_posix()


def is_estimator(obj: Any) -> bool:
    """scikit-learn's estimator protocol (duck-typed: works for xgboost/lightgbm wrappers too)."""
    kind = type(obj)
    return not isinstance(obj, type) and hasattr(kind, "get_params") and hasattr(kind, "fit")


def estimator_names(ns: Mapping[str, Any], scan: CellScan) -> list[str]:
    """Estimators the cell creates (binds) or fits."""
    names = (set(scan.stored) | set(scan.fits)) & set(ns)
    return sorted(n for n in names if is_estimator(ns[n]))


def estimator_params(name: str, est: Any) -> dict[str, Any]:
    try:
        params = est.get_params(deep=False)
    except Exception:
        return {}
    return {f"{name}.{key}": plain_value(value) for key, value in params.items()}


def plain_value(value: Any) -> Any:
    """A JSON-friendly form of a parameter value (estimators by class name)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "ndim", None) == 0:
        return item()
    if isinstance(value, list | tuple) and len(value) <= 50:
        return [plain_value(v) for v in value]
    if isinstance(value, dict) and len(value) <= 50:
        return {str(k): plain_value(v) for k, v in value.items()}
    if is_estimator(value):
        return type(value).__name__
    if callable(value):
        return getattr(value, "__qualname__", repr(value))
    return repr(value)[:250]


def as_number(value: Any) -> float | None:
    """A float for a numeric scalar (Python or numpy), None for anything else (bools too)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    is_numpy = type(value).__module__ == "numpy" and getattr(value, "ndim", None) == 0
    if is_numpy and getattr(value.dtype, "kind", "") in "iuf":
        return float(value)
    return None


def metrics(ns: Mapping[str, Any], scan: CellScan) -> dict[str, float]:
    """Numeric scalars the cell computed from sklearn.metrics/.score(), or named like metrics."""
    found = {}
    for name in sorted(set(scan.stored) - set(scan.literals)):
        number = as_number(ns.get(name))
        if number is None:
            continue
        callee = scan.assigned_calls.get(name, "")
        if is_metric_name(name) or _is_metric_call(callee, ns):
            found[name] = number
    return found


def _is_metric_call(callee: str, ns: Mapping[str, Any]) -> bool:
    if not callee:
        return False
    if callee.rpartition(".")[2] == "score":
        return True
    func = resolve(callee, ns)
    return str(getattr(func, "__module__", "") or "").startswith("sklearn.metrics")


def resolve(dotted: str, ns: Mapping[str, Any]) -> Any:
    """The object a dotted name refers to in ``ns``, or None."""
    head, *rest = dotted.split(".")
    obj = ns.get(head)
    for part in rest:
        if obj is None:
            return None
        try:
            obj = inspect.getattr_static(obj, part)
        except AttributeError:
            return None
    return obj


def model_choice(
    ns: Mapping[str, Any], scan: CellScan, explicit: str | None
) -> tuple[str | None, str | None]:
    """The estimator to log: ``--model VAR``, or the single one the cell fits. (var, warning)"""
    if explicit:
        if explicit not in ns:
            return None, f"--model {explicit}: no variable named {explicit!r} after the cell"
        if not is_estimator(ns[explicit]):
            kind = type(ns[explicit]).__name__
            return None, f"--model {explicit}: a {kind} is not a scikit-learn estimator"
        return explicit, None
    fitted = [v for v in scan.fits if is_estimator(ns.get(v))]
    return (fitted[0], None) if len(fitted) == 1 else (None, None)


def input_example(ns: Mapping[str, Any], scan: CellScan, var: str) -> Any:
    """The first rows of what the model was fitted on, copied (for signature and example)."""
    args = scan.fits.get(var) or []
    source = ns.get(args[0]) if args and args[0] else None
    if source is None or not is_data(source):
        return None
    head = getattr(source, "head", None)
    rows = head(5) if callable(head) else source[:5]
    return _blank_secret_columns(rows.copy())


def _blank_secret_columns(rows: Any) -> Any:
    """The input example is stored with the model: values of a column named like a secret
    (``password``) are replaced (text by ``***redacted***``, numbers by 0); names and types stay."""
    for column in list(getattr(rows, "columns", [])):
        if not is_secret_name(str(column)):
            continue
        values = rows[column]
        text = getattr(values.dtype, "kind", "O") in "OSUT" or "str" in str(values.dtype)
        rows[column] = REDACTED if text else values * 0
    return rows
