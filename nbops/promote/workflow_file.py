"""Writing ``.github/workflows/<name>.yml`` (rendered by :mod:`nbops.promote.workflow`) so that
promote's own workflow always follows the pipeline, and one the user edited is never lost.

The manifest records the sha256 of the workflow promote wrote. A workflow that differs from
what promote would write now is still promote's (and is rewritten) when its bytes match that
record, in this folder's manifest or in the manifest of the folder it retrains (the pipeline
was promoted again with another ``--out``); or when that folder is gone and the file is exactly
what promote writes for it. Anything else was edited by hand and is kept unless ``--force``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from nbops.errors import UsageError
from nbops.promote import layout
from nbops.promote.manifest import Manifest, sha256, write_text
from nbops.promote.workflow import render_workflow, workflow_path


def render(name: str, out_dir: Path, root: Path, data: list[str]) -> tuple[Path, str]:
    """(where the workflow goes, its text) for the pipeline in ``out_dir``."""
    text = render_workflow(name, layout.relative_path(out_dir, root), data)
    return root / workflow_path(name), text


def record(target: Path, out_dir: Path, text: str) -> dict[str, str]:
    """What the manifest keeps about the workflow (path relative to the pipeline folder)."""
    return {"path": layout.relative_path(target, out_dir), "sha256": sha256(text.encode())}


def write(
    target: Path, text: str, name: str, out_dir: Path, old: Manifest | None, force: bool
) -> list[str]:
    """Write the workflow when missing, unchanged, or promote's own; return the notes."""
    shown = _shown(target)
    current = target.read_text(encoding="utf-8") if target.is_file() else None
    if current == text:
        return []
    previous = _promotes(current, target, name, out_dir, old) if current is not None else None
    if current is not None and previous is None and not force:
        return [f"kept {shown}: it differs from what promote writes (--force replaces it)"]
    write_text(target, text)
    here = layout.relative_path(out_dir, target.parents[2])
    if previous and previous != here:
        return [
            f"rewrote {shown}: it retrained {previous}, promoted earlier; now it retrains {here}"
        ]
    return [f"wrote {shown}: GitHub Actions runs `nbops retrain` weekly and on data changes"]


def _promotes(
    current: str, target: Path, name: str, out_dir: Path, old: Manifest | None
) -> str | None:
    """The folder the existing workflow retrains if promote wrote it unedited, else None."""
    digest = sha256(current.encode())
    root = target.parents[2]
    if old is not None and old.workflow.get("sha256") == digest:
        return layout.relative_path(out_dir, root)
    folder = _folder(current)
    if folder is None:
        return None
    previous = root / folder
    manifest = Manifest.load(previous) if previous.is_dir() else None
    if manifest is not None:
        return folder if manifest.workflow.get("sha256") == digest else None
    if previous.exists():
        return None
    try:
        again = render_workflow(name, folder, _data(current, folder, name))
    except UsageError:
        return None
    return folder if again == current else None


def _parsed(text: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return None


def _folder(text: str) -> str | None:
    """The pipeline folder a workflow retrains (its ``PIPELINE`` variable)."""
    parsed = _parsed(text)
    try:
        folder = parsed["jobs"]["retrain"]["env"]["PIPELINE"]
    except (TypeError, KeyError):
        return None
    return folder if isinstance(folder, str) else None


def _data(text: str, folder: str, name: str) -> list[str]:
    """The data ``.dvc`` files a workflow watches (its push paths minus folder and itself)."""
    parsed = _parsed(text) or {}
    on: Any = parsed.get("on", parsed.get(True, {})) if isinstance(parsed, dict) else {}
    try:
        paths = list(on["push"]["paths"])
    except (TypeError, KeyError):
        return []
    prefix = "" if folder == "." else f"{folder}/"
    literal = [re.sub(r"\\(.)", r"\1", str(p)) for p in paths]
    own = {f"{prefix}**", workflow_path(name)}
    return [p.removeprefix(prefix) for p in literal if p not in own and p.startswith(prefix)]


def _shown(path: Path) -> str:
    try:
        return path.relative_to(Path.cwd().resolve()).as_posix() or "."
    except ValueError:
        return str(path)
