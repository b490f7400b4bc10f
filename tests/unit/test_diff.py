"""diff_records reports what changed between two runs, and nothing when nothing did."""

from __future__ import annotations

import math
import subprocess
import sys

from nbops.diff import diff_records, format_diff
from nbops.record import DataRef, RunRecord


def _run(**overrides: object) -> RunRecord:
    values: dict[str, object] = {
        "name": "fit",
        "params": {"lr": 0.1, "depth": 3, "layers": [8, 8]},
        "metrics": {"acc": 0.90, "loss": 0.30},
        "data": [
            DataRef("df", "input", "DataFrame", "xxh3:aaaa1111"),
            DataRef("model.pkl", "output", "file", "md5:bbbb2222"),
        ],
        "code": "model = fit(df, lr=0.1)\n",
        "code_hash": "c1",
    }
    values.update(overrides)
    return RunRecord(**values)  # type: ignore[arg-type]


def test_identical_runs_have_an_empty_diff() -> None:
    diff = diff_records(_run(), _run())
    assert diff.is_empty
    assert diff.metrics["acc"].delta == 0
    assert "no differences" in format_diff(diff)


def test_params_changed_added_removed() -> None:
    b = _run(params={"lr": 0.01, "layers": [8, 8], "seed": 1})
    diff = diff_records(_run(), b)
    assert diff.params_changed == {"lr": (0.1, 0.01)}
    assert diff.params_added == {"seed": 1}
    assert diff.params_removed == {"depth": 3}
    assert not diff.is_empty


def test_typed_and_string_params_compare_equal() -> None:
    """A record from record.json (typed) against one listed from MLflow (strings)."""
    listed = _run(params={"lr": "0.1", "depth": "3", "layers": "[8, 8]"})
    assert diff_records(_run(), listed).params_changed == {}


def test_metric_deltas_are_b_minus_a() -> None:
    b = _run(metrics={"acc": 0.95, "f1": 0.8})
    diff = diff_records(_run(), b)
    assert math.isclose(diff.metrics["acc"].delta, 0.05)
    assert set(diff.metrics_changed) == {"acc"}
    assert diff.metrics_added == {"f1": 0.8}
    assert diff.metrics_removed == {"loss": 0.30}
    assert "(+0.05)" in format_diff(diff)


def test_nan_metrics_equal_each_other() -> None:
    a = _run(metrics={"acc": float("nan")})
    assert diff_records(a, _run(metrics={"acc": float("nan")})).is_empty
    assert diff_records(a, _run(metrics={"acc": 1.0})).metrics_changed


def test_data_fingerprints() -> None:
    b = _run(
        data=[
            DataRef("df", "input", "DataFrame", "xxh3:cccc3333"),
            DataRef("extra", "input", "ndarray", None),
        ]
    )
    diff = diff_records(_run(), b)
    assert [(c.name, c.a, c.b) for c in diff.data_changed] == [
        ("df", "xxh3:aaaa1111", "xxh3:cccc3333")
    ]
    assert [c.name for c in diff.data_added] == ["extra"]
    assert [(c.name, c.role) for c in diff.data_removed] == [("model.pkl", "output")]
    text = format_diff(diff)
    assert "~ in df: aaaa1111 -> cccc3333" in text
    assert "- out model.pkl" in text


def test_unhashed_on_both_sides_is_not_a_change_but_is_noted() -> None:
    data = [DataRef("blob", "input", "object", None)]
    diff = diff_records(_run(data=data), _run(data=list(data)))
    assert diff.is_empty
    assert diff.data_unhashed == ["blob"]
    assert "unhashed: blob" in format_diff(diff)


def test_code_change_gives_a_unified_diff() -> None:
    b = _run(code="model = fit(df, lr=0.01)\n", code_hash="c2")
    diff = diff_records(_run(), b)
    assert diff.code_changed
    assert "-model = fit(df, lr=0.1)" in diff.code_diff
    assert "+model = fit(df, lr=0.01)" in diff.code_diff


def test_code_hash_alone_detects_a_change_without_code() -> None:
    """Listed runs carry only the hash; the diff still says the code changed."""
    diff = diff_records(_run(code="", code_hash="c1"), _run(code="", code_hash="c2"))
    assert diff.code_changed and diff.code_diff == []
    assert "code:\n  changed" in format_diff(diff)


def test_diff_does_not_import_mlflow() -> None:
    code = "import sys, nbops.diff; print('mlflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_diff_serializes_with_deltas() -> None:
    import json
    from dataclasses import asdict

    diff = diff_records(_run(), _run(metrics={"acc": 1.0}))
    raw = json.loads(json.dumps(asdict(diff), default=str))
    assert raw["metrics"]["acc"]["delta"] == 1.0 - 0.90
