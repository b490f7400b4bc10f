"""What a capture records from a namespace: the rules users read in the README."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score

from nbops.capture import Capture, CaptureOptions
from nbops.capture.vocab import is_metric_name


def run(code: str, ns: dict[str, Any], tmp_path: Path, **options: Any):
    capture = Capture(code, ns, CaptureOptions(**options), root=tmp_path)
    capture.begin()
    error = None
    try:
        exec(code, ns)
    except Exception as exc:
        error = exc
    return capture.finish(error)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("accuracy", True),
        ("val_accuracy", True),
        ("test_f1", True),
        ("roc_auc_test", True),
        ("rmse", True),
        ("r2", True),
        ("n_estimators", False),
        ("accurate", False),
        ("f10", False),
    ],
)
def test_metric_vocabulary(name: str, expected: bool) -> None:
    assert is_metric_name(name) is expected


def test_metrics_from_sklearn_functions_score_and_names(tmp_path: Path) -> None:
    ns: dict[str, Any] = {"f1_score": f1_score, "y": [0, 1, 1, 0], "p": [0, 1, 0, 0]}
    X = np.arange(8.0).reshape(4, 2)
    ns.update(X=X, LogisticRegression=LogisticRegression)
    code = (
        "quality = f1_score(y, p)\nm = LogisticRegression().fit(X, y)\n"
        "fit_quality = m.score(X, y)\n"
        "val_loss = 0.5 * 2\nthreshold = 0.5\ncount = len(y)\nflag = True\n"
    )
    record, _ = run(code, ns, tmp_path)
    assert set(record.metrics) == {"quality", "fit_quality", "val_loss"}
    assert record.params["threshold"] == 0.5
    assert "count" not in record.metrics and "flag" not in record.metrics


def test_estimator_params_and_random_state_warning(tmp_path: Path) -> None:
    ns: dict[str, Any] = {
        "LogisticRegression": LogisticRegression,
        "X": np.eye(4),
        "y": [0, 1, 0, 1],
    }
    code = "clf = LogisticRegression(C=2.0, solver='saga')\nclf.fit(X, y)\n"
    record, payload = run(code, ns, tmp_path)
    assert record.params == {"clf.C": 2.0, "clf.solver": "saga"}  # only what the cell set
    assert record.estimators["clf"]["params"]["random_state"] is None  # all, in record.json
    assert record.estimators["clf"]["class"] == "LogisticRegression"
    assert any("random_state=None" in w and "clf" in w for w in record.warnings)
    assert payload is not None and payload["model"] is ns["clf"]
    assert payload["input_example"].shape == (4, 4)
    assert record.model is not None and record.model.class_name == "LogisticRegression"
    # the default solver draws no random numbers: random_state=None is no problem there
    quiet, _ = run("clf = LogisticRegression(C=2.0)\nclf.fit(X, y)\n", dict(ns), tmp_path)
    assert not any("random_state" in w for w in quiet.warnings)


def test_split_without_random_state_is_warned(tmp_path: Path) -> None:
    from sklearn.model_selection import train_test_split

    ns: dict[str, Any] = {"train_test_split": train_test_split, "X": np.arange(10)}
    record, _ = run("a, b = train_test_split(X, test_size=0.2)\n", ns, tmp_path)
    assert any("train_test_split() without random_state" in w for w in record.warnings)


def test_unseeded_global_draws_are_warned_and_seeded_ones_are_not(tmp_path: Path) -> None:
    import random

    from sklearn.svm import SVC

    def ns() -> dict[str, Any]:
        frame = pd.DataFrame({"a": range(10)})
        return {"np": np, "random": random, "df": frame, "SVC": SVC, "In": [""]}

    code = (
        "a = np.random.randint(0, 10, 5)\nb = random.randint(1, 6)\nc = df.sample(3)\n"
        "rng = np.random.default_rng()\nd = rng.integers(5)\n"
        "svm = SVC(gamma='auto').fit(np.eye(4), [0, 1, 0, 1])\n"
    )
    record, _ = run(code, ns(), tmp_path)
    assert [w.split(":")[0] for w in record.warnings] == ["line 1", "line 2", "line 3", "line 4"]
    assert "np.random.randint() draws from np.random's global generator" in record.warnings[0]
    assert "random.seed(<int>)" in record.warnings[1]
    assert "df.sample() without random_state" in record.warnings[2]
    assert "default_rng() without a seed" in record.warnings[3]
    assert not any("svm" in w for w in record.warnings)  # SVC draws only for probability=True

    seeded = "np.random.seed(0)\nrandom.seed(1)\n" + code.replace("()\n", "(0)\n", 1)
    seeded = seeded.replace("df.sample(3)", "df.sample(3, random_state=0)")
    record, _ = run(seeded, ns(), tmp_path)
    assert record.warnings == []
    earlier = ns() | {"In": ["", "import numpy as np\nnp.random.seed(42)"]}  # an earlier cell
    record, _ = run("x = np.random.rand(3)\n", earlier, tmp_path)
    assert record.warnings == []


def test_inputs_outputs_and_in_place_changes(tmp_path: Path) -> None:
    df = pd.DataFrame({"a": [1.0, 2.0, None], "b": ["x", "y", "z"]})
    untouched = pd.DataFrame({"c": [1]})
    ns: dict[str, Any] = {"df": df, "untouched": untouched}
    record, _ = run("df.fillna(0.0, inplace=True)\nclean = df[df.a > 0]\n", ns, tmp_path)
    inputs = {d.name: d for d in record.inputs()}
    outputs = {d.name: d for d in record.outputs()}
    assert set(inputs) == {"df"} and set(outputs) == {"df", "clean"}
    assert inputs["df"].fingerprint != outputs["df"].fingerprint
    assert outputs["clean"].shape == [2, 2] and outputs["clean"].columns == {
        "a": "float64",
        "b": "str",
    }


def test_unhashable_data_is_recorded_as_unhashed_not_an_error(tmp_path: Path) -> None:
    ns: dict[str, Any] = {}
    record, _ = run("odd = pd.DataFrame({'o': [object(), object()]})\n", ns | {"pd": pd}, tmp_path)
    [ref] = record.outputs()
    assert ref.name == "odd" and ref.kind == "DataFrame"
    if ref.fingerprint is None:
        assert ref.note and any("odd: not fingerprinted" in w for w in record.warnings)


def test_failed_code_records_status_and_error(tmp_path: Path) -> None:
    record, payload = run("lr = 0.1\n1 / 0\n", {}, tmp_path)
    assert record.status == "FAILED" and record.error == "ZeroDivisionError: division by zero"
    assert record.params == {"lr": 0.1} and payload is None


def test_capture_problems_become_warnings(tmp_path: Path) -> None:
    class Exploding:
        def get_params(self, deep: bool = False) -> dict:
            raise RuntimeError("boom")

        def fit(self) -> None: ...

    ns: dict[str, Any] = {"Exploding": Exploding}
    record, _ = run("est = Exploding()\n", ns, tmp_path)
    assert record.status == "FINISHED"


def test_explicit_data_and_a_wrong_model_name_warn_instead_of_failing(tmp_path: Path) -> None:
    frame = pd.DataFrame({"a": [1, 2]})
    ns: dict[str, Any] = {"frame": frame, "hidden": np.arange(3)}
    code = "view = globals()['frame']\nnot_a_model = 3\n"
    record, payload = run(code, ns, tmp_path, data=["hidden"], model="not_a_model", auto=False)
    assert [d.name for d in record.inputs()] == ["hidden"]
    assert record.inputs()[0].fingerprint.startswith("xxh128:")
    assert payload is None and record.model is None
    assert any(
        "--model not_a_model" in w and "not a scikit-learn estimator" in w for w in record.warnings
    )


def test_params_are_lean_one_per_setting_and_named_defaults_stay(tmp_path: Path) -> None:
    from sklearn.ensemble import RandomForestClassifier

    ns: dict[str, Any] = {"RandomForestClassifier": RandomForestClassifier}
    ns.update(X=np.eye(6), y=[0, 1, 0, 1, 0, 1])
    code = (
        "# baseline forest, shallow\n"
        "n_estimators = 5\nmax_depth = 3\ndepth_limit = 2\n"
        "model = RandomForestClassifier(n_estimators=n_estimators, max_depth=max_depth,\n"
        "    min_samples_leaf=1, random_state=0)\n"
        "model.set_params(max_leaf_nodes=None)\n"
        "model.fit(X, y)\n"
    )
    record, _ = run(code, ns, tmp_path)
    # literals feeding a setting are one param; min_samples_leaf=1 and max_leaf_nodes=None
    # are defaults, but the cell set them by name; the other 14 defaults are left out
    assert record.params == {
        "n_estimators": 5,
        "max_depth": 3,
        "depth_limit": 2,
        "model.min_samples_leaf": 1,
        "model.max_leaf_nodes": None,
        "model.random_state": 0,
    }
    assert len(record.estimators["model"]["params"]) >= 18
    assert record.description == "baseline forest, shallow"


def test_a_setting_fed_by_a_differently_named_literal_is_recorded_once(tmp_path: Path) -> None:
    from sklearn.ensemble import RandomForestClassifier

    ns: dict[str, Any] = {"RandomForestClassifier": RandomForestClassifier}
    code = "depth = 4\nmodel = RandomForestClassifier(max_depth=depth, n_estimators=100)\n"
    record, _ = run(code, ns, tmp_path)
    # depth feeds max_depth: one param (the cell's name); n_estimators=100 is the default,
    # set by name: kept
    assert record.params == {"depth": 4, "model.n_estimators": 100}


def test_a_raising_cell_records_only_what_it_assigned_before_the_line(tmp_path: Path) -> None:
    """The stale-metric bug: `accuracy` from an earlier cell must not be this run's."""
    from nbops.capture.scan import scan_cell

    ns: dict[str, Any] = {"accuracy": 1.0, "threshold": 0.5, "f1": 0.2}
    code = "threshold = 0.5\nf1 = 0.1 + 0.2\nraise ValueError('bad data')\naccuracy = 0.7\n"
    assert len(scan_cell(code).statements) == 4
    capture = Capture(code, ns, CaptureOptions(metrics=["accuracy"]), root=tmp_path)
    capture.code_file = ("<cell-7>", 1)
    capture.begin()
    try:
        exec(compile(code, "<cell-7>", "exec"), ns)
    except ValueError as exc:
        record, _ = capture.finish(exc)
    assert record.status == "FAILED"
    # threshold was assigned (the same object as before: only the line tells), f1 too
    assert record.params == {"threshold": 0.5}
    assert record.metrics == {"f1": pytest.approx(0.3)}
    assert any("--metrics accuracy: not assigned" in w for w in record.warnings)


def test_without_the_line_a_raising_cell_keeps_only_rebound_names(tmp_path: Path) -> None:
    ns: dict[str, Any] = {"accuracy": 1.0}
    record, _ = run("loss = 0.25 * 2\nraise KeyError('x')\naccuracy = 0.5\n", ns, tmp_path)
    assert record.metrics == {"loss": 0.5}  # no stale accuracy


def test_data_contexts_and_the_file_a_frame_was_read_from(tmp_path: Path) -> None:
    csv = tmp_path / "data" / "wine.csv"
    csv.parent.mkdir()
    pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "t": [0, 1, 0, 1]}).to_csv(csv, index=False)
    ns: dict[str, Any] = {"pd": pd, "LogisticRegression": LogisticRegression, "f1_score": f1_score}
    code = (
        f"df = pd.read_csv({str(csv)!r})\n"
        "X, y = df[['a']], df['t']\n"
        "clf = LogisticRegression().fit(X, y)\n"
        "holdout = X.iloc[:2]\n"
        "f1 = f1_score(y.iloc[:2], clf.predict(holdout))\n"
    )
    record, _ = run(code, ns, tmp_path)
    contexts = {d.name: d.context for d in record.data}
    assert contexts["X"] == contexts["y"] == "training"
    assert contexts["holdout"] == "evaluation"
    assert contexts["df"] == "output" and contexts["data/wine.csv"] == "input"
    df = next(d for d in record.data if d.name == "df")
    assert df.source == "data/wine.csv"
