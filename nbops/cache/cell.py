"""One cached execution: ``%%track --cache`` in a notebook, or a pipeline step's cell that was
``%%track --cache`` in its source notebook (same keys, same entries: one computation runs once).

Before the cell runs: its key (:mod:`nbops.cache.key`). If the key is usable, nothing makes the
result depend on more than the key (or ``--cache=force``) and an entry exists, the cell does
not run: its outputs are restored and the note says "cached from run X (saved N s)". Otherwise
it runs with its output recorded, and what it left behind is stored when all of it can be
restored exactly. Every outcome is one line for the summary (:attr:`CellCache.note`), and the
cell's own result and exceptions are never changed by the cache.
"""

from __future__ import annotations

import ast
import time
from collections.abc import Callable, Mapping, MutableMapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbops.cache import outputs as out
from nbops.cache.key import CellKey, compute_key
from nbops.cache.store import CacheStore, Entry
from nbops.capture.scan import CellScan
from nbops.capture.seeds import seed_warnings
from nbops.record import RunRecord

if TYPE_CHECKING:
    from nbops.capture import Capture
    from nbops.session import Session

TAG = "nbops.cache"  # hit | stored | ran
TAG_KEY = "nbops.cache.key"
TAG_FROM = "nbops.cache.from"  # the record id of the run a hit restored
TAG_NOTE = "nbops.cache.note"  # the summary's "cache" line
FORCE_HINT = "%%track --cache=force serves it from the cache anyway"


class CellCache:
    """The cache around one execution of ``code`` in ``ns``."""

    def __init__(
        self,
        store: CacheStore,
        ns: MutableMapping[str, Any],
        *,
        root: Path,
        record: RunRecord,
        force: bool = False,
        shell: Any = None,
        file_cache: Any = None,
        source: str = "cell",
    ) -> None:
        self.store = store
        self.ns = ns
        self.root = root
        self.record = record
        self.force = force
        self.shell = shell
        self.file_cache = file_cache
        self.source = source
        self.note = ""
        self.status = "ran"
        self.key: CellKey | None = None
        self.on_hit: Callable[[], None] | None = None
        self.dropped = ""  # an entry that could not be restored: said before what followed

    def run(
        self,
        code: str,
        execute: Callable[[], Any],
        scan: CellScan,
        known: Mapping[str, str] | None = None,
    ) -> Any:
        """Serve ``code`` from the cache, or ``execute()`` it (storing what it leaves)."""
        key, blockers = self._key(code, scan, known)
        if key is None or key.digest is None:
            return self._plain(execute)
        if blockers and not self.force:
            why = "; ".join(blockers)
            self.note = f"ran: not served from the cache: {why} ({FORCE_HINT})"
            return self._plain(execute)
        entry = self.store.get(key.digest)
        if entry is not None:
            restored = self._restore(entry)
            if restored is not None:
                return restored[0]
        return self._run_and_store(key, scan, execute)

    def _key(
        self, code: str, scan: CellScan, known: Mapping[str, str] | None
    ) -> tuple[CellKey | None, list[str]]:
        try:
            key = compute_key(
                code, self.ns, root=self.root, file_cache=self.file_cache, known=known, scan=scan
            )
        except Exception as exc:  # the cache must never break the cell
            why = f"{type(exc).__name__}: {exc}"
            self.note = f"ran, not cached: nbops could not compute its key ({why})"
            return None, []
        self.key = key
        definitions = _definitions(code)
        if key.problems or definitions:
            reasons = key.problems + [
                f"it defines {name}: nbops restores values, not definitions; put the "
                "definition in a cell of its own"
                for name in definitions
            ]
            self.note = "ran, not cached: " + "; ".join(reasons)
            return None, []
        self.record.tags[TAG_KEY] = key.digest or ""
        return key, [str(h) for h in key.hazards] + _unseeded_inputs(self.ns, scan, key)

    def _plain(self, execute: Callable[[], Any]) -> Any:
        self.record.tags[TAG] = self.status
        self._tag_note()
        return execute()

    def _restore(self, entry: Entry) -> tuple[Any] | None:
        """Restore ``entry`` into the namespace; None (and the entry dropped) if it fails."""
        started = time.perf_counter()
        manifest = entry.manifest
        try:
            values: dict[str, Any] = {}
            for spec in manifest.get("outputs", []):
                value = out.load_value(entry.folder, spec, self.ns)
                values.update(dict.fromkeys(spec["names"], value))
            result = manifest.get("result")
            value = out.load_value(entry.folder, result, {**self.ns, **values}) if result else None
            out.restore_files(entry.folder, manifest.get("files", []), self.root)
        except Exception as exc:
            self.store.remove(entry.key)
            self.note = self.dropped = (
                f"ran: the cache entry of run {entry.run} could not be restored "
                f"({type(exc).__name__}: {exc}); it was removed"
            )
            return None
        out.apply(self.ns, values, manifest.get("deleted", []))
        out.replay(manifest.get("events", []), self.shell)
        took = time.perf_counter() - started
        saved = max(float(manifest.get("seconds", 0.0)) - took, 0.0)
        self.status = "hit"
        if self.on_hit is not None:
            self.on_hit()
        self.note = f"cached from run {entry.run} (saved {saved:.1f} s)"
        self.record.tags[TAG] = "hit"
        self.record.tags[TAG_FROM] = str(manifest.get("record_id", ""))
        self._tag_note()
        return (value,)

    def _run_and_store(self, key: CellKey, scan: CellScan, execute: Callable[[], Any]) -> Any:
        before = {k: id(self.ns[k]) for k in out.user_names(self.ns)}
        recorder = out.Recorder(self.shell)
        self.record.tags[TAG] = "ran"
        started = time.perf_counter()
        try:
            with recorder:
                result = execute()
        except BaseException as exc:  # the cell's exception reaches the user unchanged
            self.note = f"ran, not cached: it raised {type(exc).__name__}"
            self._tag_note()
            raise
        seconds = time.perf_counter() - started
        try:
            self._store(key, scan, before, recorder, result, seconds)
        except Exception as exc:  # storing is best effort; the cell's result stands
            self.note = f"ran, not cached: storing failed ({type(exc).__name__}: {exc})"
        self._tag_note()
        return result

    def _store(
        self,
        key: CellKey,
        scan: CellScan,
        before: dict[str, int],
        recorder: out.Recorder,
        result: Any,
        seconds: float,
    ) -> None:
        unseeded = [] if self.force else _unseeded_outputs(self.ns, scan)
        if unseeded:
            self.note = "ran, not stored: " + "; ".join(unseeded) + f" ({FORCE_HINT})"
            return
        mutated = _mutated(self.ns, key, before)
        unchanged = [k for k in key.inputs if k not in mutated]
        found = out.changed(self.ns, before, scan.stored, mutated, unchanged)
        problems = found.problems + recorder.problems + _secrets(found, recorder.events)
        if problems:
            self.note = "ran, not cached: " + "; ".join(problems)
            return
        tmp = self.store.new()
        try:
            manifest = self._write(tmp, key, found, recorder, result, seconds)
        except ValueError as exc:
            self.store.discard(tmp)
            self.note = f"ran, not cached: {exc}"
            return
        size = sum(p.stat().st_size for p in tmp.rglob("*") if p.is_file())
        if size > self.store.max_bytes:
            self.store.discard(tmp)
            self.note = (
                f"ran, not cached: its outputs ({_mb(size)}) are larger than the cache's cap "
                f"({_mb(self.store.max_bytes)}; [tool.nbops] cache_max_mb)"
            )
            return
        entry = self.store.commit(tmp, manifest)
        self.status = "stored"
        self.record.tags[TAG] = "stored"
        stored = f"stored in the cache (key {key.short}, {_mb(entry.size if entry else size)})"
        self.note = "ran; " + stored + ("; " + "; ".join(recorder.notes) if recorder.notes else "")

    def _write(
        self,
        tmp: Path,
        key: CellKey,
        found: out.Outputs,
        recorder: out.Recorder,
        result: Any,
        seconds: float,
    ) -> dict[str, Any]:
        specs: list[dict[str, Any]] = []
        (tmp / "values").mkdir()
        for i, (names, obj) in enumerate(found.groups):
            try:
                fmt, name = out.save_value(obj, str(i), tmp / "values")
            except ValueError as exc:
                kind = type(obj).__name__
                raise ValueError(f"{names[0]} (a {kind}) cannot be stored ({exc})") from None
            specs.append({"names": names, "format": fmt, "file": f"values/{name}"})
        specs += [{"names": [n], "alias": a} for n, a in found.aliases.items()]
        specs += [{"names": [n], "module": m} for n, m in found.modules.items()]
        return {
            "key": key.digest,
            "record_id": self.record.record_id,
            "run": self.record.name or self.record.record_id[:8],
            "source": self.source,
            "seconds": seconds,
            "forced": self.force,
            "outputs": specs,
            "deleted": found.deleted,
            "result": self._result_spec(tmp, result, found),
            "events": recorder.events,
            "files": out.store_files(key.writes, self.root, tmp),
            "inputs": sorted(key.inputs),
            "read_files": key.files,
            "packages": key.packages,
        }

    def _result_spec(self, tmp: Path, result: Any, found: out.Outputs) -> dict[str, Any] | None:
        if result is None:
            return None
        for names, obj in found.groups:
            if obj is result:
                return {"alias": names[0]}
        for name in [*found.aliases, *found.modules]:
            if self.ns.get(name) is result:
                return {"alias": name}
        try:
            fmt, name = out.save_value(result, out.RESULT, tmp / "values")
        except ValueError as exc:
            kind = type(result).__name__
            raise ValueError(f"its value (a {kind}) cannot be stored ({exc})") from None
        return {"format": fmt, "file": f"values/{name}"}

    def _tag_note(self) -> None:
        if self.dropped and not self.note.startswith(self.dropped):
            self.note = f"{self.dropped}; {self.note.removeprefix('ran; ')}"
        if self.note:
            self.record.tags[TAG_NOTE] = self.note


def _definitions(code: str) -> list[str]:
    """Functions and classes the cell defines at top level (or binds to a lambda)."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return []
    names = []
    for stmt in tree.body:
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.append(stmt.name)
        elif isinstance(stmt, ast.Assign) and isinstance(stmt.value, ast.Lambda):
            names += [t.id for t in stmt.targets if isinstance(t, ast.Name)]
    return names


def _unseeded_inputs(ns: Mapping[str, Any], scan: CellScan, key: CellKey) -> list[str]:
    """Estimators the cell fits that draw unseeded random numbers (random_state=None)."""
    from nbops.capture import namespace as nsp

    fitted = sorted(name for name in scan.fits if name in key.inputs and name in ns)
    return seed_warnings(ns, CellScan(), [n for n in fitted if nsp.is_estimator(ns[n])])


def _unseeded_outputs(ns: Mapping[str, Any], scan: CellScan) -> list[str]:
    """Estimators the cell made or fitted with random_state=None (results change every run)."""
    from nbops.capture import namespace as nsp

    return seed_warnings(ns, CellScan(), nsp.estimator_names(ns, scan))


def _secrets(found: out.Outputs, events: list[list[Any]]) -> list[str]:
    """Secrets the entry would write to disk (never done: the cell runs each time instead)."""
    from nbops.capture.redact import scrub_text, secret_path

    problems = [
        f"{names[0]} holds a secret (nbops never writes one to disk)"
        for names, obj in found.groups
        if any(secret_path(obj, name) for name in names)
    ]
    texts = [e[1] if e[0] != "display" else str(e[1].get("text/plain", "")) for e in events]
    if any(isinstance(t, str) and scrub_text(t) != t for t in texts if t):
        problems.append("what it prints holds a secret (nbops never writes one to disk)")
    return problems


def _mutated(ns: Mapping[str, Any], key: CellKey, before: Mapping[str, int]) -> list[str]:
    """Inputs the cell changed in place (same object, new identity): ``model.fit(X, y)``."""
    from nbops.hashing.identity import Identities

    ids = Identities(ns)
    changed = []
    for name, identity in key.inputs.items():
        if name not in ns or before.get(name) != id(ns[name]):
            continue
        if identity.startswith(("module:", "ref:", "builtin")):
            continue
        if ids.of_name(name) != identity:
            changed.append(name)
    return changed


def _mb(size: int | float) -> str:
    if size >= 2**20 / 10:
        return f"{size / 2**20:.1f} MB"
    return f"{size / 1024:.0f} KB" if size >= 1024 else f"{int(size)} bytes"


def for_capture(session: Session, capture: Capture, shell: Any, force: bool = False) -> CellCache:
    """The cache around a ``%%track --cache`` cell of ``session`` (``%%track`` imports this
    package only for such a cell)."""
    store = CacheStore(session.config.cache_dir, int(session.config.cache_max_mb * 2**20))
    cache = CellCache(
        store,
        capture.ns,
        root=session.config.project_root,
        record=capture.record,
        force=force,
        shell=shell,
        file_cache=session.file_cache,
    )
    # a hit's model is the original run's (logged there): not logged again
    cache.on_hit = lambda: setattr(capture.options, "log_model", False)
    return cache
