"""Plan -> the text of every generated file, in memory (nothing is written here).

Rendering everything first lets promote compare the result with what is on disk (the
manifest check) before touching a single file. The output depends only on the plan and the
source notebook's path relative to the pipeline folder, so it is byte-for-byte reproducible.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from nbops.notebook.plan import Plan, Step
from nbops.promote import gates as gating
from nbops.promote import layout
from nbops.promote.stepnb import build_step_notebook, inputs_by_producer, step_params
from nbops.promote.templates import environment, render


@dataclass
class Stage:
    """One ``dvc.yaml`` stage."""

    name: str
    cmd: str
    deps: list[str] = field(default_factory=list)
    params: list[str] = field(default_factory=list)
    outs: list[str] = field(default_factory=list)
    metrics: list[str] = field(default_factory=list)
    always_changed: bool = False  # its outcome depends on state DVC cannot see (the registry)


@dataclass
class Rendered:
    """The generated files (relative path -> text) and what the user should know about them."""

    files: dict[str, str]
    notes: list[str] = field(default_factory=list)


def render_pipeline(
    plan: Plan,
    source: str,
    split: str = "tags",
    gates: gating.Gates | None = None,
    contract: dict[str, str] | None = None,
) -> Rendered:
    """Every generated file for ``plan``; ``source`` is the notebook relative to the folder.

    ``split`` is how the notebook was split, repeated in the README's promote-again command;
    ``gates`` adds the validation stages and ``contract`` their schema and profile files.
    """
    env = environment()
    gates = gates or gating.Gates([], None)
    stages, notes = build_stages(plan, gates)
    files: dict[str, str] = dict(contract or {})
    for position, path in enumerate(layout.step_notebooks(plan).values(), start=1):
        files[path] = build_step_notebook(env, plan, position, source)
    files[layout.PARAMS] = render_params(env, plan, source, gates)
    files[layout.DVC_YAML] = render(env, "dvc.yaml.j2", stages=stages, source=source)
    files[layout.README] = render(env, "README.md.j2", split=split, **readme_context(plan, source))
    files[layout.GITIGNORE] = render(env, "gitignore.j2", data=layout.dvc_ignored(data_files(plan)))
    return Rendered(files=files, notes=notes)


def render_params(env: Any, plan: Plan, source: str, gates: gating.Gates | None = None) -> str:
    """``params.yaml``: the parameters cell's values, flat keys, in the notebook's order; then
    the gates' ``drift:`` and ``gate:`` sections."""
    import yaml

    body = yaml.safe_dump(plan.parameters, sort_keys=False, allow_unicode=True)
    if yaml.safe_load(body) != plan.parameters:  # PyYAML folds U+0085 in quoted unicode text
        body = yaml.safe_dump(plan.parameters, sort_keys=False)  # escaped: reads back equal
    if not plan.parameters:
        body = ""
    sections = gating.params_sections(plan, gates) if gates else ""
    return render(
        env, "params.yaml.j2", body=body.rstrip("\n"), gates=sections.rstrip("\n"), source=source
    )


def build_stages(plan: Plan, gates: gating.Gates | None = None) -> tuple[list[Stage], list[str]]:
    """One stage per step: deps on its notebook, upstream artifacts and data files; the gate
    stages before and after them."""
    gates = gates or gating.Gates([], None)
    notebooks = layout.step_notebooks(plan)
    notes: list[str] = []
    stages = []
    for step in plan.steps:
        deps = [notebooks[step.name]]
        for name in step.upstream:
            dep = _upstream_dep(plan.step(name))
            if dep not in deps:
                deps.append(dep)
        deps += [f for f in step.files if f not in deps]
        validated = gating.validated_dep(step.files, gates)
        if validated:
            deps.append(validated)
        stages.append(
            Stage(
                name=step.name,
                cmd=f"nbops step {notebooks[step.name]}",
                deps=deps,
                params=step_params(plan, step),
                outs=[layout.artifacts_dir(step.name)] if step.outputs else [],
                metrics=[layout.metrics_file(step.name)],  # every step reports what it captured
            )
        )
    first, last = gating.gate_stages(plan, gates, Stage)
    return [*first, *stages, *last], notes


def _upstream_dep(upstream: Step) -> str:
    """What a downstream stage depends on to run after ``upstream``: its artifacts, else its
    metrics file (every step writes one)."""
    if upstream.outputs:
        return layout.artifacts_dir(upstream.name)
    return layout.metrics_file(upstream.name)


def readme_context(plan: Plan, source: str) -> dict[str, Any]:
    """What README.md.j2 shows: steps, the Mermaid graph, parameters and data files."""
    notebooks = layout.step_notebooks(plan)
    steps = [
        {
            "position": position,
            "name": step.name,
            "notebook": notebooks[step.name],
            "after": [u for u in step.upstream if u not in {a.producer for a in step.inputs}],
            "inputs": inputs_by_producer(step),
            "files": step.files,
            "params": step_params(plan, step),
            "outputs": step.outputs,
            "artifacts": layout.artifacts_dir(step.name) + "/",
            "metrics": step.metrics,
            "metrics_file": layout.metrics_file(step.name),
        }
        for position, step in enumerate(plan.steps, start=1)
    ]
    parameters = [
        {
            "name": name,
            "value": json.dumps(value, ensure_ascii=False),
            "used_by": [s.name for s in plan.steps if name in s.params],
        }
        for name, value in plan.parameters.items()
    ]
    nodes, edges = mermaid_graph(plan)
    return {
        "name": plan.name,
        "source": source,
        "steps": steps,
        "parameters": parameters,
        "nodes": nodes,
        "edges": edges,
        "data": layout.outermost(data_files(plan)),
    }


def data_files(plan: Plan) -> list[str]:
    """The files any step reads, each once, in pipeline order."""
    return list(dict.fromkeys(f for step in plan.steps for f in step.files))


def mermaid_graph(plan: Plan) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """Nodes (steps, data files) and edges (labelled with the variables passed) of the DAG.

    Node ids are generated (``s1``, ``d1``) because a step may be named like a Mermaid keyword
    (``end``, ``graph``); the step name is the label.
    """
    ids = {step.name: f"s{i}" for i, step in enumerate(plan.steps, start=1)}
    files = {path: f"d{i}" for i, path in enumerate(data_files(plan), start=1)}
    nodes = [{"id": ids[s.name], "label": s.name, "open": "[", "close": "]"} for s in plan.steps]
    nodes += [
        {"id": fid, "label": path, "open": "[(", "close": ")]"} for path, fid in files.items()
    ]
    edges = []
    for step in plan.steps:
        edges += [
            {"source": files[f], "target": ids[step.name], "arrow": "-->", "label": ""}
            for f in step.files
        ]
        loaded = dict(inputs_by_producer(step))
        for name in step.upstream:
            names = ", ".join(loaded.get(name, []))
            arrow = "-->" if names else "-.->"
            edges.append(
                {"source": ids[name], "target": ids[step.name], "arrow": arrow, "label": names}
            )
    return nodes, edges
