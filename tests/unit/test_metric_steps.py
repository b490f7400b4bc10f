"""Metrics logged with a step: the collector keeps their history, ``nbops.steps()`` gives loop
iterations as steps, the mapping turns histories into MLflow metric points, the summary draws
them as curves, and the live summary reports progress. Bad values warn, never raise."""

from __future__ import annotations

import warnings

import pytest

import nbops
from nbops.capture import Capture, CaptureOptions
from nbops.capture.collector import ACTIVE, Collector
from nbops.curves import MAX_POINTS, curves_html, curves_text
from nbops.display import render_html, render_text
from nbops.live import LiveSummary
from nbops.record import RunRecord
from nbops.store.mapping import metric_points


@pytest.fixture
def collector() -> Collector:
    active = Collector()
    token = ACTIVE.set(active)
    yield active
    ACTIVE.reset(token)


def test_a_step_keeps_every_value_and_the_last_is_the_runs(collector: Collector) -> None:
    for epoch, loss in enumerate([0.9, 0.5, 0.3]):
        nbops.log_metric("loss", loss, step=epoch)
    nbops.log_metric("accuracy", 0.8)  # no step: only the value
    assert collector.metrics == {"loss": 0.3, "accuracy": 0.8}
    assert [(s, v) for s, v, _ in collector.history["loss"]] == [(0, 0.9), (1, 0.5), (2, 0.3)]
    assert "accuracy" not in collector.history
    assert all(isinstance(t, int) and t > 1e12 for _, _, t in collector.history["loss"])


def test_steps_gives_the_iteration_as_the_step(collector: Collector) -> None:
    seen = []
    for epoch in nbops.steps(range(3), start=1):  # items 0, 1, 2 at steps 1, 2, 3
        nbops.log_metrics({"loss": 1 / (epoch + 1), "acc": epoch / 10})
        seen.append(collector.step)
    nbops.log_metric("after", 1.0)  # the loop is over: no step any more
    assert seen == [1, 2, 3] and collector.step is None
    assert [s for s, _, _ in collector.history["acc"]] == [1, 2, 3]
    assert "after" not in collector.history
    assert list(nbops.steps(iter("ab"))) == ["a", "b"]  # no len(): still iterates


def test_bad_values_and_steps_warn_and_record_nothing(collector: Collector) -> None:
    with pytest.warns(UserWarning, match="not a number"):
        nbops.log_metric("loss", "high", step=1)
    with pytest.warns(UserWarning, match="not a whole number"):
        nbops.log_metric("loss", 0.5, step=1.5)
    assert collector.metrics == {} and collector.history == {}
    np = pytest.importorskip("numpy")
    nbops.log_metric("loss", np.float32(0.25), step=np.int64(4))
    assert collector.history["loss"][0][:2] == [4, 0.25]


def test_outside_a_tracked_cell_steps_iterate_and_warn() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert list(nbops.steps([1, 2])) == [1, 2]
        nbops.log_metric("loss", 1.0, step=0)
    assert len(caught) == 2 and "outside a tracked cell" in str(caught[0].message)


def test_histories_become_mlflow_points_and_the_final_value_is_latest() -> None:
    record = RunRecord(
        metrics={"loss": 0.1, "acc": 0.9, "f1": 0.5},
        metric_history={"loss": [[0, 0.5, 1000], [1, 0.2, 2000]], "acc": [[5, 0.9, 1500]]},
    )
    points = metric_points(record, dict(record.metrics), stamp=9000)
    by_key: dict[str, list] = {}
    for key, value, stamp, step in points:
        by_key.setdefault(key, []).append((value, stamp, step))
    assert by_key["acc"] == [(0.9, 1500, 5)]  # the history's last point is the value
    assert by_key["f1"] == [(0.5, 9000, 0)]  # no history: one point, as before
    # loss was overwritten after its last step: logged last, at the top step, latest time
    assert by_key["loss"] == [(0.5, 1000, 0), (0.2, 2000, 1), (0.1, 9000, 1)]


def test_the_summary_draws_curves_and_old_records_load() -> None:
    history = {"loss": [[i, 1 / (i + 1), 0] for i in range(1000)], "one": [[0, 1.0, 0]]}
    html = curves_html(history)
    assert html.count("<svg") == 1 and 'data-points="1000"' in html  # one point: no curve
    assert html.split("<polyline points=")[1].split('"')[1].count(",") == MAX_POINTS
    assert curves_text({"loss": [[0, 0.9, 0], [1, 0.1, 0]]}) == "loss 0.9 → 0.1 (2 steps)"
    record = RunRecord(name="fit", metrics={"loss": 0.001}, metric_history=history)
    assert "<svg" in render_html(record, "saved") and "curves: loss 1 → 0.001" in render_text(
        record, "saved"
    )
    raw = RunRecord(name="old").to_dict()
    del raw["metric_history"]  # a record written before the field existed
    back = RunRecord.from_dict(raw)
    assert back.metric_history == {} and RunRecord.from_json(record.to_json()) == record


def test_the_live_summary_shows_elapsed_time_progress_and_curves(tmp_path) -> None:
    capture = Capture("x = 1", {}, CaptureOptions(name="fit", experiment="e"), root=tmp_path)
    capture.begin()
    live = LiveSummary(capture)
    capture.collector.live = live  # as start() does, without the ticker thread
    live.handle = object()  # "already shown": metric() must not display from this test
    for epoch in nbops.steps(range(20)):
        nbops.log_metric("loss", 1 / (epoch + 1))
        if epoch == 7:
            break
    summary = live.summary()
    text, html = repr(summary), summary._repr_html_()
    assert "RUNNING" in text and "(pending)" in text and "'fit'" in text
    assert "step 7 (8 of 20)" in text and "loss 1 → 0.125 (8 steps)" in text
    assert "<polyline" in html and "running" in html
    capture.finish(None)
