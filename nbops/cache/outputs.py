"""What a cell leaves behind, stored so that a cache hit restores it exactly, and restored.

- the names it bound, rebound, changed in place or deleted: each value through the pipeline's
  serializers (:mod:`nbops.pipeline.serializers`: parquet, npy, joblib, pickle), a lossy format
  checked by reading it back and comparing fingerprints (a DataFrame parquet would change goes
  to pickle); a name bound to an input the cell did not change is stored as that alias, a
  module as its import, one object under several names once;
- its last expression's value (what Jupyter shows as ``Out[n]``);
- what it printed (stdout and stderr, in order) and displayed (``display()``, ``plt.show()``);
- the files it wrote (inside the project).

What cannot be restored exactly is named (:attr:`Outputs.problems`), and then nothing is
stored: a function or class the cell defines (nbops restores values, not definitions), an
object no serializer can write, a figure Jupyter draws only after the cell. Output written
below Python (by C code or a subprocess) is not seen.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import shutil
import sys
from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FunctionType, ModuleType
from typing import Any

from nbops.hashing.files import fingerprint_file
from nbops.hashing.frames import fingerprint
from nbops.hashing.identity import from_notebook
from nbops.pipeline import serializers

LOSSY = frozenset({"parquet", "npy"})  # formats checked by reading back
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
RESULT = "_"  # the name the last expression's value is stored under
_SKIP = {"In", "Out", "exit", "quit", "get_ipython"}


class Recorder:
    """Records what a cell prints and displays while passing it through unchanged."""

    def __init__(self, shell: Any) -> None:
        self.shell = shell
        self.events: list[list[Any]] = []
        self.problems: list[str] = []
        self.notes: list[str] = []
        self._saved: dict[str, Any] = {}
        self._figures: set[int] = set()

    def __enter__(self) -> Recorder:
        self._saved = {"stdout": sys.stdout, "stderr": sys.stderr}
        sys.stdout = _Tee(sys.stdout, "stdout", self.events)  # type: ignore[assignment]
        sys.stderr = _Tee(sys.stderr, "stderr", self.events)  # type: ignore[assignment]
        pub = getattr(self.shell, "display_pub", None)
        if pub is not None:
            self._saved["pub"] = pub
            self._saved["publish"] = pub.__dict__.get("publish")
            self._saved["clear"] = pub.__dict__.get("clear_output")
            original, clear = pub.publish, pub.clear_output

            def publish(data: Any, metadata: Any = None, *args: Any, **kwargs: Any) -> Any:
                self._display(data, metadata, kwargs)
                return original(data, metadata, *args, **kwargs)

            def clear_output(wait: bool = False) -> Any:
                self.events.append(["clear", bool(wait)])
                return clear(wait)

            pub.publish, pub.clear_output = publish, clear_output
        self._figures = _open_figures()
        return self

    def __exit__(self, *exc: object) -> None:
        sys.stdout, sys.stderr = self._saved["stdout"], self._saved["stderr"]
        pub = self._saved.get("pub")
        if pub is not None:
            for attr, saved in (("publish", "publish"), ("clear_output", "clear")):
                if self._saved[saved] is None:
                    pub.__dict__.pop(attr, None)
                else:
                    setattr(pub, attr, self._saved[saved])
        drawn = _open_figures() - self._figures
        if drawn:
            self.problems.append(
                f"it draws {len(drawn)} figure(s) that Jupyter shows only after the cell: end "
                "the cell with plt.show() so they can be stored"
            )

    def _display(self, data: Any, metadata: Any, kwargs: dict[str, Any]) -> None:
        if isinstance(data, dict) and WIDGET_MIME in data:
            self.notes.append("a widget (a progress bar?) it displays is not replayed")
            return
        display_id = (kwargs.get("transient") or {}).get("display_id")
        event = ["display", data, metadata or {}, display_id]
        if kwargs.get("update") and display_id:
            for earlier in self.events:
                if earlier[0] == "display" and earlier[3] == display_id:
                    earlier[1], earlier[2] = data, metadata or {}  # the final state counts
                    return
        try:
            json.dumps([data, metadata or {}])
        except (TypeError, ValueError):
            kind = ", ".join(sorted(data)) if isinstance(data, dict) else type(data).__name__
            self.problems.append(f"a display output ({kind}) cannot be stored as JSON")
            return
        self.events.append(event)


class _Tee:
    """A text stream that writes through to ``target`` and records what passes."""

    def __init__(self, target: Any, name: str, events: list[list[Any]]) -> None:
        self._target = target
        self._name = name
        self._events = events

    def write(self, text: str) -> int:
        if isinstance(text, str) and text:
            last = self._events[-1] if self._events else None
            if last is not None and last[0] == self._name:
                last[1] += text
            else:
                self._events.append([self._name, text])
        return self._target.write(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)


@dataclass
class Outputs:
    """The values to store: groups of names bound to one object, and how to store each."""

    groups: list[tuple[list[str], Any]] = field(default_factory=list)  # (names, object)
    aliases: dict[str, str] = field(default_factory=dict)  # name -> unchanged input it is
    modules: dict[str, str] = field(default_factory=dict)  # name -> module
    deleted: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def user_names(ns: Mapping[str, Any]) -> Iterable[str]:
    return (k for k in ns if not k.startswith("_") and k not in _SKIP)


def changed(
    ns: Mapping[str, Any],
    before: Mapping[str, int],
    stored: Iterable[str],
    mutated: Iterable[str],
    unchanged_inputs: Iterable[str],
) -> Outputs:
    """The names to restore: bound by the cell (``stored``), rebound (their ``id`` changed),
    changed in place (``mutated``); and the names it deleted."""
    names = {k for k in stored if k in ns and not k.startswith("__")}
    names |= {k for k in user_names(ns) if before.get(k) != id(ns[k])}
    names |= {k for k in mutated if k in ns}
    out = Outputs(deleted=sorted(k for k in before if k not in ns))
    inputs = {id(ns[k]): k for k in unchanged_inputs if k in ns and k not in names}
    by_id: dict[int, list[str]] = {}
    for name in sorted(names):
        obj = ns[name]
        if id(obj) in inputs:
            out.aliases[name] = inputs[id(obj)]
        elif isinstance(obj, ModuleType):
            out.modules[name] = obj.__name__
        elif isinstance(obj, FunctionType | type) and from_notebook(obj):
            kind = "class" if isinstance(obj, type) else "function"
            out.problems.append(
                f"{name} is a {kind} this cell defines: nbops restores values, not "
                "definitions; put the definition in a cell of its own"
            )
        elif id(obj) in by_id:
            by_id[id(obj)].append(name)
        else:
            by_id[id(obj)] = [name]
            out.groups.append((by_id[id(obj)], obj))
    return out


def save_value(obj: Any, stem: str, folder: Path) -> tuple[str, str]:
    """Write ``obj`` as ``folder/<stem>.<ext>`` with the first serializer that restores it
    exactly; (format, file name). Raises ValueError naming each format's reason."""
    reasons = []
    for row in serializers.candidates(obj):
        path = folder / f"{stem}.{row.ext}"
        try:
            row.save(obj, path)
            if row.name in LOSSY and fingerprint(row.load(path)) != fingerprint(obj):
                raise ValueError("it does not read back identical")
        except Exception as exc:
            path.unlink(missing_ok=True)
            reasons.append(f"{row.name}: {type(exc).__name__}: {exc}")
            continue
        return row.name, path.name
    raise ValueError("; ".join(reasons) or "no serializer takes it")


def load_value(folder: Path, spec: Mapping[str, Any], ns: Mapping[str, Any]) -> Any:
    """One stored value back (raises on any problem: the caller then runs the cell)."""
    if "module" in spec:
        return importlib.import_module(spec["module"])
    if "alias" in spec:
        return ns[spec["alias"]]
    rows = {row.name: row for row in serializers.SERIALIZERS}
    return rows[spec["format"]].load(folder / spec["file"])


def store_files(written: Mapping[str, Path], root: Path, folder: Path) -> list[dict[str, str]]:
    """Copy the files the cell wrote into the entry; their project-relative paths and md5."""
    stored = []
    for i, (text, path) in enumerate(sorted(written.items())):
        if not path.is_file():
            continue
        (folder / "files").mkdir(exist_ok=True)
        name = f"files/{i}"
        shutil.copyfile(path, folder / name)
        relative = path.resolve().relative_to(root.resolve()).as_posix()
        stored.append({"path": relative, "as": text, "md5": fingerprint_file(path), "file": name})
    return stored


def restore_files(entry: Path, files: list[dict[str, str]], root: Path) -> None:
    """Write the stored files back where they differ from what the cell wrote."""
    for spec in files:
        target = root / spec["path"]
        if target.is_file() and fingerprint_file(target) == spec["md5"]:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(entry / spec["file"], target)


def replay(events: list[list[Any]], shell: Any) -> None:
    """Print and display again what the cell printed and displayed, in order."""
    for event in events:
        kind = event[0]
        if kind in ("stdout", "stderr"):
            stream = sys.stdout if kind == "stdout" else sys.stderr
            stream.write(event[1])
            continue
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        if kind == "display" and shell is not None:
            shell.display_pub.publish(data=event[1], metadata=event[2])
        elif kind == "clear":
            from IPython.display import clear_output

            clear_output(wait=event[1])


def apply(ns: MutableMapping[str, Any], values: Mapping[str, Any], deleted: list[str]) -> None:
    """Bind the restored values and delete what the cell deleted (all at once, at the end)."""
    ns.update(values)
    for name in deleted:
        ns.pop(name, None)


def _open_figures() -> set[int]:
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is None:
        return set()
    try:
        return set(plt.get_fignums())
    except Exception:
        return set()
