"""A hand-built promoted pipeline (per docs/pipeline-layout.md) for the runtime's tests, so
they do not depend on ``nbops promote``: load -> features -> train, with a CSV data file."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import yaml

PARAMS = {"n_rows": 20, "scale": 2.0, "alpha": 1.0}
SETUP = "import numpy as np\nimport pandas as pd"

# name: (params, inputs, outputs, metrics, step cells, data files)
Steps = dict[str, tuple[list[str], dict[str, str], list[str], list[str], list[str], list[str]]]
STEPS: Steps = {
    "load": (
        ["n_rows"],
        {},
        ["df"],
        ["rows"],
        ['raw = pd.read_csv("data/raw.csv")', "df = raw.head(n_rows).copy()\nrows = len(df)"],
        ["data/raw.csv"],
    ),
    "features": (
        ["scale"],
        {"df": "load"},
        ["X", "y"],
        [],
        [
            "if scale <= 0:\n    raise ValueError(f'scale must be positive, got {scale}')",
            'X = df[["a", "b"]].to_numpy() * scale\ny = df["target"]',
        ],
        [],
    ),
    "train": (
        ["alpha"],
        {"X": "features", "y": "features"},
        ["model"],
        ["score"],
        [
            "from sklearn.linear_model import Ridge\n\n"
            "model = Ridge(alpha=alpha).fit(X, y)\nscore = float(model.score(X, y))"
        ],
        [],
    ),
}


def _cell(kind: str, source: str, tag: str) -> nbformat.NotebookNode:
    new = nbformat.v4.new_markdown_cell if kind == "markdown" else nbformat.v4.new_code_cell
    return new(source, metadata={"tags": [tag]})


def step_notebook(index: int, name: str, steps: Steps = STEPS) -> nbformat.NotebookNode:
    params, inputs, outputs, metrics, cells, _ = steps[name]
    start = (
        "from nbops.pipeline.runtime import StepRun\n"
        f"_nbops_step = StepRun.start({name!r}, globals(), inputs={inputs!r}, "
        f"outputs={outputs!r}, params={params!r}, metrics={metrics!r})"
    )
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells = [
        _cell("markdown", f"# Step {index} of {len(steps)}: {name}", "nbops-generated"),
        _cell("code", "\n".join(f"{p} = {PARAMS[p]!r}" for p in params), "parameters"),
        _cell("code", SETUP, "nbops-setup"),
        _cell("code", start, "nbops-load"),
        *[_cell("code", source, "nbops-step") for source in cells],
        _cell("code", "_nbops_step.finish(globals())", "nbops-save"),
    ]
    return nb


def build_pipeline(folder: Path, step_cmd: str, name: str = "demo", steps: Steps = STEPS) -> Path:
    """Write the pipeline into ``folder`` (created); return it."""
    (folder / "steps").mkdir(parents=True)
    (folder / "data").mkdir()
    rows = ["a,b,target"] + [f"{i},{(i * 7) % 5},{2 * i + (i % 3)}" for i in range(40)]
    (folder / "data" / "raw.csv").write_text("\n".join(rows) + "\n")
    stages = {}
    for index, step in enumerate(steps, start=1):
        params, inputs, outputs, metrics, _, files = steps[step]
        notebook = f"steps/{index:02d}_{step}.ipynb"
        nbformat.write(step_notebook(index, step, steps), folder / notebook)
        producers = sorted({f"artifacts/{p}" for p in inputs.values()})
        stages[step] = {
            "cmd": f"{step_cmd} {notebook}",
            "deps": [notebook, *producers, *files],
            "params": params,
            "outs": [f"artifacts/{step}"] if outputs else [],
            "metrics": [{f"metrics/{step}.json": {"cache": False}}] if metrics else [],
        }
        stages[step] = {k: v for k, v in stages[step].items() if v}  # as promote writes it
    (folder / "dvc.yaml").write_text(yaml.safe_dump({"stages": stages}, sort_keys=False))
    (folder / "params.yaml").write_text(yaml.safe_dump(PARAMS, sort_keys=False))
    (folder / ".gitignore").write_text("artifacts/\nreports/\nmetrics/\n")
    manifest = {"pipeline": name, "source": f"../../{name}.ipynb", "nbops_version": "0.1.0"}
    (folder / ".nbops-promote.json").write_text(json.dumps(manifest, indent=1))
    return folder


def set_param(folder: Path, key: str, value: object) -> None:
    path = folder / "params.yaml"
    params = yaml.safe_load(path.read_text())
    params[key] = value
    path.write_text(yaml.safe_dump(params, sort_keys=False))
