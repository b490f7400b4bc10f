"""One step notebook: the cells of ``docs/pipeline-layout.md``, tagged by who owns them.

Header, parameters, setup, load, the step's own cells, save. Cell ids are derived from the
cell's role and position, never random, so promoting an unchanged notebook writes identical
bytes (the manifest compares hashes). nbformat is imported here, lazily by the caller's import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nbops.notebook.plan import Cell, Plan, Step
from nbops.pipeline_folder import (
    SOURCE_KEY,
    TAG_HEADER,
    TAG_LOAD,
    TAG_PARAMETERS,
    TAG_SAVE,
    TAG_SETUP,
    TAG_STEP,
)
from nbops.promote.templates import render

if TYPE_CHECKING:
    import jinja2

SAVE_SOURCE = "_nbops_step.finish(globals())"
NO_PARAMETERS = "# this step uses no pipeline parameters"


def step_params(plan: Plan, step: Step) -> list[str]:
    """The parameters ``step`` uses, in the order of the notebook's parameters cell."""
    return [name for name in plan.parameters if name in step.params]


def parameters_source(plan: Plan, step: Step) -> str:
    """Literal assignments (``name = repr(value)``) of only the parameters the step uses."""
    lines = [f"{name} = {plan.parameters[name]!r}" for name in step_params(plan, step)]
    return "\n".join(lines) or NO_PARAMETERS


def inputs_by_producer(step: Step) -> list[tuple[str, list[str]]]:
    """The step's inputs grouped by producing step, in first-seen order (for the header)."""
    grouped: dict[str, list[str]] = {}
    for artifact in step.inputs:
        grouped.setdefault(artifact.producer, []).append(artifact.name)
    return list(grouped.items())


def build_step_notebook(env: jinja2.Environment, plan: Plan, position: int, source: str) -> str:
    """The ``.ipynb`` text of step number ``position`` (1-based, run order) of ``plan``."""
    import nbformat
    from nbformat import v4

    step = plan.steps[position - 1]
    params = step_params(plan, step)
    header = render(
        env,
        "step_header.md.j2",
        step=step,
        position=position,
        total=len(plan.steps),
        source=source,
        inputs=inputs_by_producer(step),
        params=params,
    )
    load = render(
        env,
        "step_load.py.j2",
        step=step,
        inputs={a.name: a.producer for a in step.inputs},
        params=params,
    )
    cells = [
        v4.new_markdown_cell(header.strip(), **_meta("header", TAG_HEADER)),
        v4.new_code_cell(parameters_source(plan, step), **_meta("parameters", TAG_PARAMETERS)),
        *[_copy(cell, f"setup-{i}", TAG_SETUP) for i, cell in enumerate(plan.setup, 1)],
        v4.new_code_cell(load.strip(), **_meta("load", TAG_LOAD)),
        *[_copy(cell, f"step-{i}", TAG_STEP) for i, cell in enumerate(step.cells, 1)],
        v4.new_code_cell(SAVE_SOURCE, **_meta("save", TAG_SAVE)),
    ]
    nb = v4.new_notebook(cells=cells, metadata=_notebook_metadata(source))
    nbformat.validate(nb)
    return nbformat.writes(nb) + "\n"


def _notebook_metadata(source: str) -> dict[str, Any]:
    """The ``python3`` kernel every Jupyter install has (the source's kernel may not exist
    where the steps run), and the source notebook (relative to the pipeline folder), which
    errors name."""
    kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return {
        "kernelspec": kernelspec,
        "language_info": {"name": "python"},
        SOURCE_KEY: {"source": source},
    }


def _meta(cell_id: str, tag: str) -> dict[str, Any]:
    return {"id": f"nbops-{cell_id}", "metadata": {"tags": [tag]}}


def _copy(cell: Cell, cell_id: str, tag: str) -> Any:
    """A source cell, verbatim, with only nbops' tag (parse already removed ``%%track``) and
    where it comes from: its number in the source notebook and the lines removed above it,
    so a failing step names the user's cell and line."""
    from nbformat import v4

    make = {"code": v4.new_code_cell, "markdown": v4.new_markdown_cell, "raw": v4.new_raw_cell}
    meta = _meta(cell_id, tag)
    meta["metadata"][SOURCE_KEY] = {"cell": cell.index + 1, "line_offset": cell.line_offset}
    if cell.cache:  # %%track --cache in the notebook: the step may reuse its cache entry
        meta["metadata"][SOURCE_KEY]["cache"] = True
    return make[cell.kind](cell.source, **meta)
