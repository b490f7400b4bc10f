"""What the data gate validates: the tabular files the steps read, and every tabular file of a
data folder they read; when there is none, why (the source notebook's cell) and the fix.

The reads come from :mod:`nbops.notebook.paths` (constant-folded path expressions), kept on the
plan by dataflow. A read promote could not follow is said even when other files are validated:
the user learns which file goes unchecked and the ``data:PATH`` tag that adds it.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from nbops.notebook.plan import DataRead, Plan

MAX_FOLDER_FILES = 20  # tabular files of one data folder that get a contract each
_SKIP_DIRS = {"pipelines", "node_modules", "__pycache__", "site-packages", "mlruns", "venv"}


def find(plan: Plan, root: Path) -> tuple[list[str], list[str], dict[str, str]]:
    """(tabular files to validate, notes, {reason, fix} when there are none)."""
    from nbops.validate.data import is_tabular

    files = [PurePosixPath(f) for step in plan.steps for f in step.files]
    inside = [str(f) for f in dict.fromkeys(files) if not f.is_absolute() and ".." not in f.parts]
    data: list[str] = []
    notes: list[str] = []
    for rel in inside:
        if (root / rel).is_dir():
            found = _folder_tables(root, rel)
            if len(found) > MAX_FOLDER_FILES:
                notes.append(
                    f"{rel}/ holds {len(found)} tables: the data contract covers the first "
                    f"{MAX_FOLDER_FILES} (add more to schema.yaml by hand)"
                )
            data += found[:MAX_FOLDER_FILES]
        elif is_tabular(rel):
            data.append(rel)
    data = list(dict.fromkeys(data))
    unread = [r for r in plan.data_reads if r.file is None]
    if data:
        notes += [f"{_problem(r)}: it is not validated. {_fix(r, root)}" for r in unread]
        return data, notes, {}
    if unread:
        read = unread[0]
        return [], notes, {"reason": _problem(read), "fix": _fix(read, root)}
    if inside:
        shown = ", ".join(inside)
        return (
            [],
            notes,
            {
                "reason": f"the steps read {shown}, no table nbops can validate "
                "(.csv, .tsv, .parquet)",
                "fix": "read the data from a .csv or .parquet file",
            },
        )
    return (
        [],
        notes,
        {
            "reason": "the steps read no data file (the data comes from code, e.g. "
            "load_wine(), or from a place promote cannot see)",
            "fix": "write the data to a file once (e.g. "
            "`df.to_csv('data/train.csv', index=False)`) and read it in the notebook with "
            "pd.read_csv('data/train.csv')",
        },
    )


def _folder_tables(root: Path, folder: str) -> list[str]:
    from nbops.validate.data import is_tabular

    tables = []
    for current, dirs, names in os.walk(root / folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        tables += [
            (Path(current) / name).relative_to(root).as_posix()
            for name in sorted(names)
            if is_tabular(name) and not name.startswith(".")
        ]
    return tables


def _problem(read: DataRead) -> str:
    if read.path is None:
        return f"{read.cell.where}: `{read.call}` reads a path nbops could not work out"
    if "://" in read.path:
        return (
            f"{read.cell.where}: `{read.call}` reads {read.path}, which is not a file of the "
            "project (nbops cannot version or validate it)"
        )
    return f"{read.cell.where}: `{read.call}` reads {read.path}, which is not next to the notebook"


def _fix(read: DataRead, root: Path) -> str:
    number = read.cell.index + 1
    if read.path is not None and "://" in read.path:
        name = PurePosixPath(read.path.split("?")[0]).name or "data.csv"
        return (
            f"download it once into the project (e.g. data/{name}), read that file in cell {number}"
        )
    if read.path is not None:
        return f"check the path in cell {number}: it is relative to the notebook's folder"
    candidates = tables_near(root)
    if len(candidates) == 1:
        return f"tag cell {number} `data:{candidates[0]}`"
    example = " or ".join(f"`data:{c}`" for c in candidates[:3]) or "`data:data/train.csv`"
    return f"tag cell {number} `data:PATH` with the file it reads (e.g. {example})"


def tables_near(root: Path, depth: int = 3) -> list[str]:
    """Tabular files under the notebook's folder (not in pipelines/ or hidden folders)."""
    from nbops.validate.data import is_tabular

    found = []
    base = len(root.resolve().parts)
    for current, dirs, names in os.walk(root.resolve()):
        level = len(Path(current).parts) - base
        dirs[:] = sorted(
            d for d in dirs if not d.startswith(".") and d not in _SKIP_DIRS and level < depth
        )
        found += [
            (Path(current) / n).relative_to(root.resolve()).as_posix()
            for n in sorted(names)
            if is_tabular(n)
        ]
    return found[:20]
