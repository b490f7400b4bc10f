"""Reading a promoted pipeline folder (see ``docs/pipeline-layout.md``): manifest, params,
metrics and step notebooks. Stdlib only (plus PyYAML when params are read), and notebooks are
read as JSON: ``import nbformat`` costs ~1 s where jupyter_server is installed.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from nbops.errors import NotebookError, UsageError
from nbops.pipeline_folder import (  # noqa: F401 (re-exported: the readers' names)
    DVC_YAML,
    MANIFEST,
    METRICS_DIR,
    PARAMS,
    REPORTS_DIR,
    TAG_PARAMETERS,
    TAG_SETUP,
    TAG_STEP,
)


def read_manifest(folder: Path) -> dict[str, Any]:
    """The manifest promote wrote, or {} (a hand-made or older pipeline)."""
    path = folder / MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise NotebookError(
            f"{path} is not valid JSON: {exc}", fix="re-run `nbops promote --force`"
        ) from exc
    return data if isinstance(data, dict) else {}


def require_pipeline(
    folder: Path, command: str, markers: tuple[str, ...] = (PARAMS, DVC_YAML)
) -> Path:
    """``folder`` resolved, if it is a folder holding one of ``markers``; else a UsageError
    that says what is missing, not what is wrong inside a file it does not have."""
    path = Path(folder).resolve()
    problem = ""
    if not path.exists():
        problem = f"{path} does not exist"
    elif not path.is_dir():
        problem = f"{path} is a file, not a pipeline folder"
    elif markers and not any((path / marker).is_file() for marker in markers):
        problem = f"{path} is not a promoted pipeline (it has no {' or '.join(markers)})"
    if problem:
        raise UsageError(
            f"{command}: {problem}",
            fix="pass the pipeline folder `nbops promote` made (e.g. pipelines/NAME), or run "
            "`nbops promote NOTEBOOK` first",
            path=str(path),
        )
    return path


def pipeline_name(folder: Path) -> str:
    """The manifest's ``pipeline``, else the folder's name: the pipeline's MLflow experiment."""
    name = read_manifest(folder).get("pipeline")
    return name if isinstance(name, str) and name else folder.resolve().name


def read_yaml(path: Path) -> Any:
    import yaml

    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except yaml.YAMLError as exc:
        raise NotebookError(
            f"{path} is not valid YAML: {exc}", fix=f"correct {path.name} (flat `name: value`)"
        ) from exc


def read_params(folder: Path) -> dict[str, Any]:
    """``params.yaml`` as a flat dict ({} when there is none)."""
    data = read_yaml(folder / PARAMS)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise NotebookError(
            f"{folder / PARAMS} must map parameter names to values",
            fix="write one `name: value` per line",
        )
    return data


def stage_names(folder: Path) -> list[str]:
    """The stages of ``dvc.yaml`` in file order (which is promote's pipeline order)."""
    data = read_yaml(folder / DVC_YAML) or {}
    stages = data.get("stages") if isinstance(data, dict) else None
    return list(stages) if isinstance(stages, dict) else []


def read_metrics(
    folder: Path, order: list[str] | None = None, only: list[str] | None = None
) -> dict[str, float]:
    """The union of ``metrics/*.json`` (files of later stages win on a clash); ``only``
    limits it to those stages' files."""
    directory = folder / METRICS_DIR
    if not directory.is_dir():
        return {}
    rank = {name: i for i, name in enumerate(order or [])}
    files = sorted(directory.glob("*.json"), key=lambda p: (rank.get(p.stem, len(rank)), p.stem))
    if only is not None:
        files = [path for path in files if path.stem in only]
    merged: dict[str, float] = {}
    for path in files:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict):
            merged.update(_numbers(data))
    return merged


def _numbers(data: dict[str, Any]) -> dict[str, float]:
    out = {}
    for key, value in data.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        out[str(key)] = float(value) if math.isfinite(value) else value
    return out


def read_notebook(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NotebookError(
            f"step notebook {path} does not exist",
            fix="re-run `nbops promote` to regenerate the steps",
        ) from None
    except (OSError, ValueError) as exc:
        raise NotebookError(
            f"{path} is not a readable notebook: {exc}",
            fix="re-run `nbops promote --force` to regenerate it",
        ) from exc


def cell_source(cell: dict[str, Any]) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def cell_tags(cell: dict[str, Any]) -> list[str]:
    tags = (cell.get("metadata") or {}).get("tags") or []
    return [str(t) for t in tags]


def tagged_code(nb: dict[str, Any], tag: str) -> list[str]:
    """Sources of the code cells carrying ``tag``, in order."""
    cells = nb.get("cells", [])
    return [cell_source(c) for c in cells if c.get("cell_type") == "code" and tag in cell_tags(c)]
