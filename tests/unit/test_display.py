"""The summary under a tracked cell: what it tells the user, in text and in HTML."""

from __future__ import annotations

import pytest

from nbops.display import Summary, render_html, render_text
from nbops.record import DataRef, ModelRef, RunRecord

FP_IN = "xxh3:3f2a1b9c77777777"
FP_FILE = "sha256:9a8b7c6d55555555"


def _record(**changes: object) -> RunRecord:
    record = RunRecord(
        name="train-rf",
        experiment="churn",
        status="FINISHED",
        start=100.0,
        end=102.5,
        params={"n_estimators": 100, "max_depth": 5, "note": "<script>alert(1)</script>"},
        metrics={"accuracy": 0.931234567, "f1": 0.88},
        data=[
            DataRef("df", "input", "DataFrame", fingerprint=FP_IN, shape=[1000, 12]),
            DataRef("data/raw.csv", "input", "file", fingerprint=FP_FILE, size=2048),
            DataRef("preds", "output", "ndarray", shape=[200], note="object dtype"),
        ],
        model=ModelRef("clf", "sklearn", "RandomForestClassifier", logged=True),
        warnings=[
            "RandomForestClassifier without random_state: results will differ on re-run",
            "train_test_split without random_state",
        ],
        run_id="a1b2c3d4e5f60718293a4b5c6d7e8f90",
    )
    for key, value in changes.items():
        setattr(record, key, value)
    return record


def test_text_shows_what_was_recorded() -> None:
    text = render_text(_record(), "saved", "")
    assert "train-rf" in text and "a1b2c3d4" in text and "churn" in text
    assert "FINISHED" in text and "2.50s" in text
    assert "n_estimators=100" in text and "max_depth=5" in text
    assert "accuracy=0.9312" in text and "f1=0.88" in text
    assert "df DataFrame [1000×12] 3f2a1b9c" in text
    assert "data/raw.csv file 9a8b7c6d" in text
    assert "preds ndarray [200] unhashed" in text
    assert "clf" in text and "RandomForestClassifier" in text
    assert "a1b2c3d4e5" not in text  # the short id only


def test_each_warning_on_its_own_line() -> None:
    lines = render_text(_record(), "saved", "").splitlines()
    warned = [line for line in lines if "random_state" in line]
    assert len(warned) == 2
    assert any("train_test_split" in line for line in warned)


def test_summary_is_compact() -> None:
    params = {f"p{i}": i for i in range(20)}
    text = render_text(_record(params=params), "saved", "")
    assert "p7=7" in text and "p8=" not in text and "+12 more" in text
    assert len(text.splitlines()) <= 10


def test_saving_shows_pending_not_a_run_id() -> None:
    text = render_text(_record(run_id=None), "saving", "")
    assert "pending" in text and "spool" not in text


def test_failed_run_shows_the_error() -> None:
    record = _record(status="FAILED", error="ValueError: Input contains NaN")
    text = render_text(record, "saved", "")
    assert "FAILED" in text and "ValueError: Input contains NaN" in text


@pytest.mark.parametrize("state", ["failed", "local"])
def test_undelivered_record_says_where_it_is_and_how_to_sync(state: str) -> None:
    record = _record(run_id=None)
    message = "MLflow store unreachable"
    for rendered in (render_text(record, state, message), render_html(record, state, message)):
        assert ".nbops/spool" in rendered
        assert "nbops sync" in rendered and "%nbops sync" in rendered
        assert message in rendered


def test_html_escapes_every_value() -> None:
    record = _record(name="<b>x</b>", warnings=["<img src=x onerror=alert(1)>"])
    page = render_html(record, "saved", "<i>msg</i>")
    assert "<script" not in page and "<img" not in page and "<i>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;b&gt;x&lt;/b&gt;" in page
    assert "&lt;img src=x" in page


def test_html_carries_the_same_facts() -> None:
    page = render_html(_record(), "saved", "")
    for fact in ("a1b2c3d4", "n_estimators=100", "accuracy=0.9312", "3f2a1b9c", "unhashed"):
        assert fact in page
    assert page.count("random_state") == 2
    assert "color:inherit" in page  # follows the JupyterLab theme


def test_summary_is_an_ipython_display_object() -> None:
    record = _record()
    summary = Summary(record, "saved")
    assert repr(summary) == render_text(record, "saved", "")
    assert summary._repr_html_() == render_html(record, "saved", "")
    assert "pending" in repr(Summary(record))  # "saving" by default


def test_unknown_state_is_rejected() -> None:
    with pytest.raises(ValueError, match="state"):
        Summary(_record(), "done")


def test_minimal_record_renders() -> None:
    record = RunRecord()
    assert "RUNNING" in render_text(record, "saving", "")
    assert render_html(record, "saving", "").startswith("<div")


def test_a_saved_run_links_to_mlflow_when_a_ui_is_known() -> None:
    from nbops.config import Config
    from nbops.links import run_link, ui_address

    record = RunRecord(name="baseline", run_id="ab" * 16, description="the baseline forest")
    record.status = "FINISHED"
    summary = Summary(record, "saved", ui="http://127.0.0.1:5000/")
    record.experiment_id = "3"
    link = "http://127.0.0.1:5000/#/experiments/3/runs/" + "ab" * 16
    link += "?workflowType=machine_learning"  # MLflow's model-training view
    assert f"MLflow: {link}" in repr(summary) and "about: the baseline forest" in repr(summary)
    assert f'href="{link.replace("&", "&amp;")}"' in summary._repr_html_()
    assert "MLflow:" not in repr(Summary(record, "saved"))  # no UI configured: no link
    assert "href" not in Summary(record, "saving", ui="http://x")._repr_html_()  # not yet saved
    # where the address comes from: ui_url, else a tracking server, else none
    from pathlib import Path

    root = Path("/tmp")
    assert ui_address(Config(root, tracking_uri="sqlite:////tmp/m.db")) == ""
    assert ui_address(Config(root, tracking_uri="http://mlflow:5000/")) == "http://mlflow:5000"
    local = Config(root, tracking_uri="sqlite:////tmp/m.db", ui_url="http://localhost:5000")
    assert run_link(ui_address(local), "r1") == "http://localhost:5000/#/runs/r1"
