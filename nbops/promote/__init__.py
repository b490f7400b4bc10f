"""``nbops promote``: a tagged notebook -> a self-contained DVC pipeline folder.

The folder's layout is the contract in ``docs/pipeline-layout.md``. Promote reads the notebook
into a :class:`~nbops.notebook.plan.Plan` (parse + dataflow), renders every generated file in
memory, checks them against the folder's manifest (a hand edit is never overwritten silently),
writes them, then makes the folder a DVC project if none holds it and copies + ``dvc add``-s the
data files the notebook reads. Promoting an unchanged notebook again changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from nbops.notebook.plan import Plan
from nbops.promote import layout
from nbops.promote.manifest import Changes

if TYPE_CHECKING:
    from nbops.promote.gates import Gates

__all__ = ["PromoteResult", "promote"]


@dataclass
class PromoteResult:
    """What promote did; every path is relative to ``out_dir``."""

    out_dir: Path  # the pipeline folder (absolute)
    plan: Plan
    written: list[str] = field(default_factory=list)  # generated files created or replaced
    unchanged: list[str] = field(default_factory=list)  # generated files already up to date
    removed: list[str] = field(default_factory=list)  # generated files of steps that are gone
    data: list[str] = field(default_factory=list)  # data files copied in and tracked by DVC
    notes: list[str] = field(default_factory=list)  # Plan.notes + what promote did


def promote(
    notebook: str | Path,
    out: str | Path | None = None,
    split: str = "tags",
    force: bool = False,
    deploy: bool | None = None,
) -> PromoteResult:
    """Promote ``notebook`` into ``out`` (default ``pipelines/<name>/`` next to the notebook).

    ``split`` applies to notebooks without ``step:`` tags (``"headings"`` splits at ``##``
    headings). A generated file changed by hand since the last promote raises
    :class:`~nbops.errors.NotebookError` naming it, unless ``force``; DVC failures raise
    :class:`~nbops.errors.NbopsError` with DVC's message. ``deploy`` adds the ``deploy`` stage
    after the model gate (None: keep it if the folder has it).
    """
    from nbops import __version__, dvc
    from nbops.notebook.dataflow import infer_dataflow
    from nbops.notebook.parse import parse_notebook
    from nbops.promote import data, gates
    from nbops.promote.manifest import Manifest, apply_changes, plan_changes
    from nbops.promote.render import render_pipeline

    source = Path(notebook)
    plan = infer_dataflow(parse_notebook(source, split=split))
    out_dir = Path(out if out is not None else layout.default_out(source, plan)).resolve()
    source_rel = layout.relative_path(source, out_dir)
    found = gates.plan_gates(plan)
    found.deploy = _wants_deploy(deploy, out_dir, found, plan)
    contract = gates.contract_files(source.parent, found)
    rendered = render_pipeline(plan, source_rel, split, found, contract)
    copies = data.data_to_copy(plan, set(rendered.files))
    old = Manifest.load(out_dir)
    changes = plan_changes(
        out_dir, rendered.files, old, force=force, shown=_shown(out_dir), source=plan.notebook
    )
    apply_changes(out_dir, rendered.files, changes)
    new = Manifest.of(plan.name, source_rel, __version__, split, rendered.files, copies)
    new.save(out_dir, old)

    notes = [*plan.notes, *rendered.notes, *_change_notes(changes)]
    notes += dvc.ensure_project(out_dir)
    added = data.track_data(source.parent, out_dir, copies)
    if added:
        notes.append(f"copied {', '.join(added)} into the folder and ran `dvc add` on it")
    notes += _write_workflow(plan, out_dir, source.parent, copies, force)
    if not changes.write and not changes.remove and not added:
        notes.append("the pipeline folder was already up to date: nothing changed")
    return PromoteResult(
        out_dir=out_dir,
        plan=plan,
        written=changes.write,
        unchanged=changes.unchanged,
        removed=changes.remove,
        data=copies,
        notes=notes,
    )


def _wants_deploy(deploy: bool | None, out_dir: Path, found: Gates, plan: Plan) -> bool:
    """``--deploy``/``--no-deploy``, else what the folder had: promoting again keeps it."""
    from nbops.pipeline.layout import stage_names
    from nbops.promote.gates import DEPLOY_STAGE

    wanted = deploy if deploy is not None else DEPLOY_STAGE in stage_names(out_dir)
    if wanted and found.evaluation is None:
        plan.notes.append(
            "no deploy stage: it delivers what the model gate registers, and there is none"
        )
        return False
    return wanted


def _write_workflow(
    plan: Plan, out_dir: Path, notebook_dir: Path, data: list[str], force: bool
) -> list[str]:
    """``.github/workflows/<name>.yml`` at the repository root (the git root, else the
    notebook's folder): written when missing or unchanged; a hand-edited one is kept."""
    from nbops import dvc
    from nbops.promote.workflow import render_workflow, workflow_path

    root = dvc.git_root(out_dir) or notebook_dir.resolve()
    target = root / workflow_path(plan.name)
    text = render_workflow(plan.name, layout.relative_path(out_dir, root), data)
    shown = _shown(target)
    if target.is_file() and target.read_text(encoding="utf-8") == text:
        return []
    if target.is_file() and not force:
        return [f"kept {shown}: it differs from what promote writes (--force replaces it)"]
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    return [f"wrote {shown}: GitHub Actions runs `nbops retrain` weekly and on data changes"]


def _change_notes(changes: Changes) -> list[str]:
    notes = []
    if changes.overwritten:
        notes.append(f"overwrote hand edits (force): {', '.join(changes.overwritten)}")
    if changes.remove:
        notes.append(f"removed files of steps that are gone: {', '.join(changes.remove)}")
    return notes


def _shown(path: Path) -> str:
    """How messages name a folder: relative to the working directory when inside it."""
    try:
        return path.relative_to(Path.cwd().resolve()).as_posix() or "."
    except ValueError:
        return str(path)
