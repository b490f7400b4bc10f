"""``.nbops-promote.json``: which files promote wrote, so promoting again never loses an edit.

The manifest records the sha256 of every generated file. Promoting again regenerates them all;
a file whose bytes still match the record is promote's to overwrite (or delete, when its step is
gone), a file that differs was changed by hand (or was never promote's) and is only replaced
with ``force``. The check runs before anything is written, so a refusal leaves the folder as it
was. Files are replaced atomically and the manifest is written last.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from nbops.errors import NotebookError
from nbops.promote.layout import MANIFEST


@dataclass
class Manifest:
    pipeline: str  # the pipeline's name (Plan.name): nbops run's MLflow experiment
    source: str  # the source notebook, relative to the pipeline folder
    nbops_version: str
    split: str
    files: dict[str, str] = field(default_factory=dict)  # generated path -> sha256
    data: list[str] = field(default_factory=list)  # copied data files (dvc add-ed)
    # gates promote could not attach: stage -> {"reason", "fix"} (nbops level shows them)
    missing_gates: dict[str, dict[str, str]] = field(default_factory=dict)
    # the GitHub workflow promote rendered: {"path" (relative to the folder), "sha256"}
    workflow: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        pipeline: str,
        source: str,
        version: str,
        split: str,
        files: dict[str, str],
        data: list[str],
        missing_gates: dict[str, dict[str, str]] | None = None,
        workflow: dict[str, str] | None = None,
    ) -> Manifest:
        """The manifest of freshly rendered ``files`` (path -> text)."""
        hashes = {rel: sha256(text.encode("utf-8")) for rel, text in files.items()}
        missing = dict(missing_gates or {})
        return cls(pipeline, source, version, split, hashes, list(data), missing, workflow or {})

    def save(self, out_dir: Path, old: Manifest | None) -> None:
        """Write it (last, after the files it describes), unless ``old`` already says the same."""
        if old is None or old.to_text() != self.to_text():
            write_text(out_dir / MANIFEST, self.to_text())

    def to_text(self) -> str:
        return json.dumps(asdict(self), indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def load(cls, out_dir: Path) -> Manifest | None:
        """The folder's manifest, or None when there is none (or it is not one we can read)."""
        try:
            data = json.loads((out_dir / MANIFEST).read_text(encoding="utf-8"))
            return cls(
                pipeline=str(data.get("pipeline", "")),
                source=str(data["source"]),
                nbops_version=str(data["nbops_version"]),
                split=str(data.get("split", "tags")),
                files={str(k): str(v) for k, v in data["files"].items() if _inside(out_dir, k)},
                data=[str(p) for p in data.get("data", [])],
                missing_gates=_missing(data.get("missing_gates")),
                workflow=_strings(data.get("workflow")),
            )
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None


def _strings(value: object) -> dict[str, str]:
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


def _missing(value: object) -> dict[str, dict[str, str]]:
    if not isinstance(value, dict):
        return {}
    return {
        str(stage): {str(k): str(v) for k, v in info.items()}
        for stage, info in value.items()
        if isinstance(info, dict)
    }


def _inside(out_dir: Path, rel: object) -> bool:
    """Only files inside the folder can be promote's: a crafted or corrupted manifest entry
    (``../x``, an absolute path, a path through a symlink) must not let promote replace or
    delete a file elsewhere."""
    if not isinstance(rel, str) or not rel or Path(rel).is_absolute():
        return False
    folder = out_dir.resolve()
    target = (folder / rel).resolve()
    return target != folder and target.is_relative_to(folder)


@dataclass
class Changes:
    """What writing the new files does to the folder (paths relative to it)."""

    write: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    remove: list[str] = field(default_factory=list)
    overwritten: list[str] = field(default_factory=list)  # hand edits replaced under force


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_sha256(path: Path) -> str | None:
    try:
        return sha256(path.read_bytes())
    except FileNotFoundError:
        return None


def plan_changes(
    out_dir: Path,
    files: dict[str, str],
    old: Manifest | None,
    *,
    force: bool,
    shown: str,
    source: str,
    appended: dict[str, set[str]] | None = None,
) -> Changes:
    """Sort the new files into write/unchanged and the stale ones into remove; refuse hand edits.

    ``shown`` and ``source`` name the folder and the source notebook in the error. A file
    promote never recorded counts as the user's unless it already holds what promote writes.
    ``appended`` lists, per file, lines a tool promote runs may add to it (``dvc add`` ignoring
    the data in ``.gitignore``): a file that differs from the record only by those lines is
    still promote's.
    """
    recorded = old.files if old else {}
    changes = Changes()
    edited: list[str] = []
    for rel, text in files.items():
        current = file_sha256(out_dir / rel)
        if current == sha256(text.encode("utf-8")):
            changes.unchanged.append(rel)
            continue
        if current is not None and current != recorded.get(rel):
            lines = (appended or {}).get(rel, set())
            if not lines or _without(out_dir / rel, lines) != recorded.get(rel):
                edited.append(rel)
        changes.write.append(rel)
    for rel, digest in recorded.items():
        current = None if rel in files else file_sha256(out_dir / rel)
        if current is not None:
            changes.remove.append(rel)
            if current != digest:
                edited.append(rel)
    if edited and not force:
        raise _edited_error(shown, edited, fresh=old is None, source=source)
    changes.overwritten = edited
    return changes


def _without(path: Path, lines: set[str]) -> str | None:
    """The sha256 of ``path`` with ``lines`` removed."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    kept = [line for line in text.splitlines(keepends=True) if line.rstrip("\n") not in lines]
    return sha256("".join(kept).encode("utf-8"))


def _edited_error(shown: str, edited: list[str], *, fresh: bool, source: str) -> NotebookError:
    names = ", ".join(edited)
    if fresh:
        problem = f"{shown} already has file(s) nbops promote did not write: {names}"
        fix = "promote into another folder (--out), or pass --force to overwrite them"
    else:
        problem = f"{shown}: generated file(s) changed by hand since the last promote: {names}"
        fix = (
            f"move your change into the source notebook ({source}) and promote again, or "
            "pass --force (force=True) to overwrite the change"
        )
    return NotebookError(problem, fix=fix, path=shown, files=list(edited))


def apply_changes(out_dir: Path, files: dict[str, str], changes: Changes) -> None:
    """Write (atomically) and delete as planned; the caller writes the manifest after this."""
    for rel in changes.write:
        write_text(out_dir / rel, files[rel])
    for rel in changes.remove:
        (out_dir / rel).unlink(missing_ok=True)


def write_text(path: Path, text: str) -> None:
    """Replace ``path`` in one step (no half-written file), with ``\\n`` line endings."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.nbops-tmp")
    tmp.write_bytes(text.encode("utf-8"))
    os.replace(tmp, path)
