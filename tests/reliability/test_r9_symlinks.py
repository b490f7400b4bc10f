"""R9: paths are judged by where they resolve. A symlink in the project that leads out of it
(to ``/etc``, to a folder next to the project, a link deep inside a data folder, a link inside
the pipeline folder) makes promote refuse, naming the link, before anything is written: nothing
from outside is copied, hashed or ``dvc add``-ed. ``%%track`` records such a file without
reading it. Links that stay inside the project work as before (the data is copied, not linked).
Real DVC, a real IPython shell and SQLite store.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest
from reliability_support import all_runs

from nbops.config import Config
from nbops.errors import NotebookError
from nbops.promote import promote
from nbops.session import Session

pytestmark = pytest.mark.reliability


def notebook(path: Path, *cells: tuple[str, list[str]]) -> Path:
    nb = {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {},
        "cells": [
            {"cell_type": "code", "metadata": {"tags": t}, "source": s, "outputs": []}
            | {"execution_count": None}
            for s, t in cells
        ],
    }
    path.write_text(json.dumps(nb))
    return path


def files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.is_symlink() and ".nbops" not in p.parts
    }


@pytest.fixture
def outside(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder next to the project with a file nobody may copy."""
    folder = tmp_path_factory.mktemp("outside")
    (folder / "private.csv").write_text("user,secret\nroot,r9-outside-canary\n")
    return folder


def refused_without_a_trace(project: Path, nb: Path, link: str, **kwargs: Any) -> None:
    before = files(project)
    with pytest.raises(NotebookError) as caught:
        promote(nb, **kwargs)
    error = caught.value
    assert link in error.message and "outside the project" in error.message
    assert "symlink" in error.fix or "symlink" in error.message
    assert files(project) == before  # nothing copied, generated or dvc-added
    assert not (project / "pipelines").exists() and not list(project.rglob("*.dvc"))


def test_a_link_to_etc_is_refused(project: Path) -> None:
    (project / "data").mkdir()
    (project / "data" / "etcdir").symlink_to("/etc")
    nb = notebook(
        project / "nb.ipynb", ("import os\nnames = os.listdir('data/etcdir')", ["step:load"])
    )
    refused_without_a_trace(project, nb, "data/etcdir")


def test_a_link_to_a_folder_next_to_the_project_is_refused(project: Path, outside: Path) -> None:
    (project / "data").mkdir()
    (project / "data" / "shared").symlink_to(outside)
    nb = notebook(
        project / "nb.ipynb",
        ("import pandas as pd\ndf = pd.read_csv('data/shared/private.csv')", ["step:load"]),
    )
    refused_without_a_trace(project, nb, "data/shared")


def test_a_link_deep_inside_a_data_folder_is_found(project: Path, outside: Path) -> None:
    raw = project / "data" / "raw"
    (raw / "2024" / "q1").mkdir(parents=True)
    (raw / "2024" / "jan.csv").write_text("a\n1\n")
    (raw / "2024" / "q1" / "feb.csv").symlink_to(outside / "private.csv")
    nb = notebook(
        project / "nb.ipynb", ("import os\nparts = os.listdir('data/raw')", ["step:load"])
    )
    refused_without_a_trace(project, nb, "feb.csv")


def test_a_link_inside_the_pipeline_folder_cannot_redirect_its_files(
    project: Path, outside: Path
) -> None:
    nb = notebook(project / "nb.ipynb", ("x = 1", ["step:load"]))
    out = project / "pipelines" / "nb"
    out.mkdir(parents=True)
    (out / "steps").symlink_to(outside, target_is_directory=True)
    before = sorted(p.name for p in outside.iterdir())
    with pytest.raises(NotebookError) as caught:
        promote(nb)
    assert "steps" in caught.value.message and "remove the symlink" in caught.value.fix
    assert sorted(p.name for p in outside.iterdir()) == before


def test_a_link_that_stays_inside_the_project_is_copied_as_data(project: Path) -> None:
    archive = project / "archive" / "2024"
    archive.mkdir(parents=True)
    (archive / "train.csv").write_text("a,target\n1,0\n2,1\n")
    (project / "data").mkdir()
    (project / "data" / "current").symlink_to(archive, target_is_directory=True)
    nb = notebook(
        project / "nb.ipynb",
        ("import pandas as pd\ndf = pd.read_csv('data/current/train.csv')", ["step:load"]),
    )
    result = promote(nb)
    copy = result.out_dir / "data" / "current"
    assert result.data == ["data/current/train.csv"]
    assert not copy.is_symlink() and not (copy / "train.csv").is_symlink()
    assert (copy / "train.csv").read_text() == "a,target\n1,0\n2,1\n"
    assert (copy / "train.csv.dvc").is_file()  # tracked by DVC like any data file


def test_track_records_a_file_behind_an_outside_link_without_reading_it(
    shell: Any, config: Config, project: Path, outside: Path
) -> None:
    (project / "data").mkdir()
    (project / "data" / "shared").symlink_to(outside)
    (project / "data" / "inside.csv").write_text("a\n1\n")
    (project / "data" / "alias.csv").symlink_to(project / "data" / "inside.csv")
    cell = (
        "%%track --name r9\n"
        "outside_size = os.path.getsize('data/shared/private.csv')\n"
        "inside_size = os.path.getsize('data/alias.csv')\n"
    )
    assert shell.run_cell("import os").success and shell.run_cell(cell).success
    session: Session = shell.user_ns["__nbops_session__"]
    assert session.flush(timeout=60) == [] and session.spool.pending() == []
    [run] = all_runs(config.tracking_uri)
    inside_md5 = hashlib.md5(b"a\n1\n").hexdigest()
    digests = {d.dataset.name: d.dataset.digest for d in run.inputs.dataset_inputs}
    assert digests["data/alias.csv"] == inside_md5  # a link inside: fine
    assert digests["data/shared/private.csv"] == "unhashed"
    [ref] = [d for d in stored_record(run)["data"] if d["name"] == "data/shared/private.csv"]
    assert "symlink" in ref["note"] and "data/shared" in ref["note"]
    outside_md5 = hashlib.md5((outside / "private.csv").read_bytes()).hexdigest()
    everything = b"".join(files(project).values()) + b"".join(
        p.read_bytes() for p in (project / ".nbops").rglob("*") if p.is_file()
    )
    assert outside_md5.encode() not in everything  # never hashed, so never stored
    assert b"r9-outside-canary" not in everything
    assert os.path.exists(project / "data" / "shared" / "private.csv")


def stored_record(run: Any) -> dict[str, Any]:
    from urllib.parse import urlparse
    from urllib.request import url2pathname

    folder = Path(url2pathname(urlparse(run.info.artifact_uri).path))
    return json.loads((folder / "nbops" / "record.json").read_text())
