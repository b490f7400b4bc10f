"""Issue 20 through real Jupyter kernels: ``%%track --cache`` skips a cell whose inputs are
unchanged and restores what it left exactly; each kind of input change re-runs it; unseeded
random draws are never served; the hidden-state warning names the variable and both cells.

The kernels are driven as a front end drives them (execute requests, JupyterLab's ``cellId``
metadata where a test needs cell identities), in a project in ``tmp_path``.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from jupyter_client.manager import KernelManager

pytestmark = pytest.mark.kernel

SETUP = """
%load_ext nbops
import json
import numpy as np, pandas as pd, nbopsfake
import nbops
from nbops.hashing.identity import Identities
from sklearn.ensemble import RandomForestClassifier
rng = np.random.default_rng(0)
frame = pd.DataFrame(rng.normal(size=(300, 4)), columns=list("abcd"))
labels = (frame["a"] > 0).astype(int).to_numpy()
def features(df):
    return df * nbopsfake.SCALE
with open("weights.txt", "w") as handle:
    handle.write("1.0")
"""
TRAIN = """%%track --cache
weight = float(open("weights.txt").read())
X = features(frame) * weight
model = RandomForestClassifier(n_estimators=20, random_state=0).fit(X, labels)
proba = model.predict_proba(X)[:, 1]
print(f"trained on {len(X)} rows, mean proba {proba.mean():.6f}")
X.describe()"""
SNAPSHOT = """print(json.dumps({
    "X": nbops.fingerprint(X), "proba": nbops.fingerprint(proba), "weight": weight,
    "model": Identities({"m": model}).of_name("m"),
}))"""
DRAWS = "%%track --cache\nnoise = np.random.rand(3)\nprint(list(noise))"


class Kernel:
    """One kernel, executing cells like a front end; each call returns the cell's outputs."""

    def __init__(self, km: KernelManager) -> None:
        self.km = km
        self.client = km.client()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=60)

    def run(self, code: str, cell_id: str | None = None, deleted: list[str] | None = None) -> Out:
        metadata: dict[str, Any] = {"cellId": cell_id} if cell_id else {}
        if deleted:
            metadata["deletedCells"] = deleted
        content = {
            "code": code,
            "silent": False,
            "store_history": True,
            "user_expressions": {},
            "allow_stdin": False,
            "stop_on_error": True,
        }
        msg = self.client.session.msg("execute_request", content, metadata=metadata)
        self.client.shell_channel.send(msg)
        out = Out()
        while True:
            reply = self.client.get_iopub_msg(timeout=180)
            if reply["parent_header"].get("msg_id") != msg["header"]["msg_id"]:
                continue
            kind, body = reply["msg_type"], reply["content"]
            if kind == "status" and body["execution_state"] == "idle":
                break
            if kind == "stream":
                out.streams.append(body["text"])
            elif kind in ("display_data", "execute_result", "update_display_data"):
                out.displays.append(body["data"].get("text/plain", ""))
            elif kind == "error":
                out.error = f"{body['ename']}: {body['evalue']}"
        assert out.error is None, out.error
        return out


class Out:
    def __init__(self) -> None:
        self.streams: list[str] = []
        self.displays: list[str] = []
        self.error: str | None = None

    @property
    def printed(self) -> str:
        return "".join(self.streams)

    @property
    def summary(self) -> str:
        return next((d for d in self.displays if d.startswith("nbops run")), "")

    @property
    def shown(self) -> list[str]:
        """What the cell itself displayed (not nbops' summary)."""
        return [d for d in self.displays if not d.startswith("nbops run")]

    @property
    def cache(self) -> str:
        match = re.search(r"^  cache: (.*)$", self.summary, re.MULTILINE)
        return match.group(1) if match else ""


@contextmanager
def kernel(cwd: Path, **env: str) -> Iterator[Kernel]:
    km = KernelManager(kernel_name="python3")
    km.start_kernel(cwd=str(cwd), env={**os.environ, "PYDEVD_DISABLE_FILE_VALIDATION": "1", **env})
    session = Kernel(km)
    try:
        yield session
    finally:
        session.client.stop_channels()
        km.shutdown_kernel(now=True)


def fake_package(folder: Path, version: str) -> Path:
    """``nbopsfake`` (version ``version``) installed in a site-packages folder of its own."""
    site = folder / "site-packages"
    (site / "nbopsfake").mkdir(parents=True, exist_ok=True)
    (site / "nbopsfake" / "__init__.py").write_text("SCALE = 2\n")
    info = site / "nbopsfake-0.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: nbopsfake\nVersion: {version}\n")
    (info / "top_level.txt").write_text("nbopsfake\n")
    return site


def snapshot(k: Kernel) -> dict[str, Any]:
    return json.loads(k.run(SNAPSHOT).printed)


def test_a_cached_cell_is_skipped_restored_exactly_and_rerun_on_any_input_change(
    project: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    site = fake_package(tmp_path_factory.mktemp("packages"), "1.0")
    with kernel(project, PYTHONPATH=str(site)) as k:
        k.run(SETUP)
        first = k.run(TRAIN)
        assert first.cache.startswith("ran; stored in the cache"), first.summary
        run_name = re.search(r"nbops run '(\w+)'", first.summary).group(1)
        before = snapshot(k)
        k.run("del X, model, proba, weight")

        hit = k.run(TRAIN)
        assert hit.cache.startswith(f"cached from run {run_name} (saved "), hit.summary
        assert hit.printed == first.printed and "trained on 300 rows" in hit.printed
        assert hit.shown == first.shown and "count" in hit.shown[0]  # X.describe(), as Out
        assert snapshot(k) == before  # DataFrame, array, fitted model, float: identical

        k.run("frame.iloc[-1, 0] += 1.0")  # one value of one input
        assert k.run(TRAIN).cache.startswith("ran; stored"), "a changed value must re-run"
        k.run("frame.iloc[-1, 0] -= 1.0")
        assert k.run(TRAIN).cache.startswith(f"cached from run {run_name}")
        comment = TRAIN.replace("\nX = ", "\n# the features, weighted\nX = ")
        assert k.run(comment).cache.startswith("cached from run"), "comments are not code"

        assert k.run(TRAIN.replace("20,", "21,")).cache.startswith("ran; stored")  # the code
        k.run("def features(df):\n    return df * nbopsfake.SCALE + 0.0")  # a function it calls
        assert k.run(TRAIN).cache.startswith("ran; stored")
        (project / "weights.txt").write_text("2.0")  # a file it reads
        assert k.run(TRAIN).cache.startswith("ran; stored")
        assert snapshot(k)["weight"] == 2.0

        draws = [k.run(DRAWS), k.run(DRAWS)]
        for out in draws:
            assert out.cache.startswith("ran: not served from the cache: line 1: "), out.summary
            assert "reads the global random state" in out.cache
        assert draws[0].printed != draws[1].printed

    with kernel(project, PYTHONPATH=str(site)) as k:  # a new kernel: the entries persist
        k.run(SETUP.replace('"1.0"', '"2.0"'))
        k.run("def features(df):\n    return df * nbopsfake.SCALE + 0.0")
        assert k.run(TRAIN).cache.startswith("cached from run")
    fake_package(site.parent, "1.1")  # pip install -U nbopsfake, then restart the kernel
    with kernel(project, PYTHONPATH=str(site)) as k:
        k.run(SETUP.replace('"1.0"', '"2.0"'))
        k.run("def features(df):\n    return df * nbopsfake.SCALE + 0.0")
        assert k.run(TRAIN).cache.startswith("ran; stored"), "a package version re-runs it"


def notebook(path: Path, cells: dict[str, str]) -> None:
    """Save a notebook with these cell ids and sources (what JupyterLab writes)."""
    nb = {
        "cells": [
            {
                "cell_type": "code",
                "id": cid,
                "metadata": {},
                "source": src,
                "outputs": [],
                "execution_count": None,
            }
            for cid, src in cells.items()
        ],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path.write_text(json.dumps(nb))


def test_hidden_state_warning_names_the_variable_and_both_cells(project: Path) -> None:
    path = project / "analysis.ipynb"
    cells = {
        "c1": "%load_ext nbops",
        "c2": "threshold = 0.5",
        "c3": "%%track\nflagged = threshold * 2",
        "c4": "%%track\nagain = threshold + 1",
    }
    notebook(path, cells)
    with kernel(project, NBOPS_NOTEBOOK=str(path)) as k:
        for cid in ("c1", "c2"):
            k.run(cells[cid], cell_id=cid)
        clean = k.run(cells["c3"], cell_id="c3")
        assert "hidden state" not in clean.summary

        time.sleep(0.05)
        notebook(path, {**cells, "c2": "threshold = 0.9"})  # edited, saved, not re-run
        stale = k.run(cells["c3"], cell_id="c3")
        assert (
            "⚠ hidden state: threshold comes from cell 2 (In [2]), which was edited after "
            "it ran: re-run cell 2, then this cell (cell 3)" in stale.summary
        ), stale.summary

        deleted = k.run(cells["c4"], cell_id="c4", deleted=["c2"])
        assert "threshold comes from cell 2 (In [2]), a cell deleted after it ran" in (
            deleted.summary
        ), deleted.summary
        check = k.run("%nbops check").printed
        assert "\n  threshold comes from cell 2 (In [2]), a cell deleted after it ran" in check
        assert (
            "\n  flagged comes from cell 3 (In [4]), which used threshold (its cell was "
            "deleted): re-run cell 3 once threshold is right" in check
        ), check


def test_a_promoted_step_reuses_the_cached_notebook_cell(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A cell the notebook ran with ``--cache`` is not computed again by the first run of its
    promoted step: same code, same inputs (loaded from the previous step), same key."""
    import subprocess

    import nbformat
    import papermill

    from nbops.cli import main

    subprocess.run(["git", "init", "-q"], cwd=project, check=True)
    v4 = nbformat.v4
    cells = [
        v4.new_code_cell("%load_ext nbops"),
        v4.new_code_cell("n_estimators = 30", metadata={"tags": ["parameters"]}),
        v4.new_code_cell(
            "from sklearn.datasets import load_wine\n"
            "from sklearn.ensemble import RandomForestClassifier\n"
            "from sklearn.model_selection import train_test_split",
            metadata={"tags": ["setup"]},
        ),
        v4.new_code_cell(
            "X, y = load_wine(return_X_y=True, as_frame=True)\n"
            "X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)",
            metadata={"tags": ["step:prepare"]},
        ),
        v4.new_code_cell(
            "%%track --cache\n"
            "model = RandomForestClassifier(n_estimators, random_state=0).fit(X_train, y_train)\n"
            "accuracy = model.score(X_test, y_test)\n"
            "print('accuracy', accuracy)",
            metadata={"tags": ["step:train"]},
        ),
    ]
    nb = v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, project / "wine.ipynb")
    papermill.execute_notebook(
        str(project / "wine.ipynb"), str(project / "wine.ipynb"), cwd=str(project),
        kernel_name="python3", progress_bar=False,
    )  # fmt: skip
    [summary] = [
        "".join(o.get("text", "")) + str(o.get("data", {}).get("text/plain", ""))
        for o in nbformat.read(project / "wine.ipynb", as_version=4).cells[4].outputs
        if "nbops run" in str(o.get("data", {}).get("text/plain", ""))
    ]
    run_name = re.search(r"nbops run '(\w+)'", summary).group(1)

    assert main(["promote", "wine.ipynb", "--check"]) == 0
    out = capsys.readouterr().out
    report = nbformat.read(project / "pipelines/wine/reports/02_train.ipynb", as_version=4)
    printed = "".join(o.get("text", "") for c in report.cells for o in c.get("outputs", []))
    assert f"nbops: cell 5 of the notebook: cached from run {run_name} (saved " in printed
    assert "accuracy 0.9" in printed  # what the cell printed, replayed in the step's report
    assert re.search(r"accuracy +\| 0\.9\d+ +\| 0\.9\d+ +\| yes", out), out
    assert "notebook run " in out and "was clean: its kernel ran the cells in order" in out
