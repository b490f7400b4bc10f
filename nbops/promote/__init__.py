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

    def text(self) -> str:
        """What `nbops promote` did: the steps and their dataflow, files, notes, how to run."""
        plan = self.plan
        lines = [f"promoted {plan.notebook} -> {self.out_dir} ({len(plan.steps)} step(s))"]
        for step in plan.steps:
            loads = ", ".join(f"{a.name}<-{a.producer}" for a in step.inputs) or "-"
            lines.append(f"  {step.name}: params {', '.join(step.params) or '-'}; loads {loads}")
        changed = len(self.written) + len(self.removed)
        lines.append(f"files: {changed} written/removed, {len(self.unchanged)} unchanged")
        lines += [n if n.startswith("warning:") else f"note: {n}" for n in self.notes]
        lines.append(f"run it: nbops run {self.out_dir}")
        return "\n".join(lines)


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
    from nbops import dvc
    from nbops._version import __version__
    from nbops.notebook.dataflow import infer_dataflow
    from nbops.notebook.parse import parse_notebook
    from nbops.promote import data, gates, workflow_file
    from nbops.promote.manifest import Manifest, apply_changes, plan_changes
    from nbops.promote.render import render_pipeline
    from nbops.promote.secrets import check_secret_artifacts, check_secrets

    source = Path(notebook)
    plan = parse_notebook(source, split=split)
    check_secrets(plan)  # first: later errors quote cells, and no file is written
    plan = infer_dataflow(plan)
    check_secret_artifacts(plan)
    data.check_sources(plan, source.parent, [f for step in plan.steps for f in step.files])
    given_out = Path(out if out is not None else layout.default_out(source, plan))
    data.check_out(given_out, source.parent)
    out_dir = given_out.resolve()
    source_rel = layout.relative_path(source, out_dir)
    layout.check_paths(plan.notebook, source_rel, out_dir)
    found = gates.plan_gates(plan)
    found.deploy = _wants_deploy(deploy, out_dir, found, plan)
    contract = gates.contract_files(source.parent, found)
    rendered = render_pipeline(plan, source_rel, split, found, contract)
    layout.check_encodable(plan.notebook, rendered.files)
    copies = data.data_to_copy(plan, set(rendered.files))
    data.check_targets(out_dir, [*rendered.files, *copies])
    created = layout.prepare_out(out_dir)
    with layout.undo_on_failure(out_dir, created):
        old = Manifest.load(out_dir)
        dvc_lines = set(layout.dvc_ignored([*(old.data if old else []), *copies]))
        changes = plan_changes(
            out_dir,
            rendered.files,
            old,
            force=force,
            shown=_shown(out_dir),
            source=plan.notebook,
            appended={layout.GITIGNORE: dvc_lines},
        )
        apply_changes(out_dir, rendered.files, changes)
        root = dvc.git_root(out_dir) or source.parent.resolve()
        workflow, text = workflow_file.render(plan.name, out_dir, root, copies)
        new = Manifest.of(
            plan.name,
            source_rel,
            __version__,
            split,
            rendered.files,
            copies,
            found.missing,
            workflow_file.record(workflow, out_dir, text),
        )
        new.save(out_dir, old)

        notes = [*plan.notes, *rendered.notes, *_change_notes(changes)]
        notes += dvc.ensure_project(out_dir)
        added = data.track_data(source.parent, out_dir, copies)
        if added:
            notes.append(f"copied {', '.join(added)} into the folder and ran `dvc add` on it")
        notes += workflow_file.write(workflow, text, plan.name, out_dir, old, force)
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
    from nbops.pipeline_folder import DEPLOY_STAGE

    had = out_dir.is_dir() and DEPLOY_STAGE in stage_names(out_dir)
    wanted = deploy if deploy is not None else had
    if wanted and found.evaluation is None:
        plan.notes.append(
            "no deploy stage: it delivers what the model gate registers, and there is none"
        )
        return False
    return wanted


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
