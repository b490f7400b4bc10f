"""The benchmark harness around the timings: rows, the side-by-side table, the JSON it keeps, and
how benchmarks/run.py collects modules (fake rows and fake modules; nothing is timed here)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
FAKE_MODULE = """
from common import row, speedup_row

def rows(quick=False):
    print("benchmark chatter")
    n = 2 if quick else 1
    return [row("F1", "fake cell", 0.01 * n, "fake anchor", 0.1, 0.25),
            speedup_row("F2", "fake hash", 0.01, "md5", 0.3 * n, 20)]
"""


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, ModuleType]]:
    """benchmarks/common.py, report.py and run.py, imported as run.py imports them."""
    import importlib

    before = set(sys.modules)
    monkeypatch.syspath_prepend(str(BENCHMARKS))  # undone (sys.path restored) at teardown
    yield {name: importlib.import_module(name) for name in ("common", "report", "run")}
    for name in set(sys.modules) - before:
        del sys.modules[name]


def fake_rows(common: ModuleType) -> list[dict[str, Any]]:
    legacy = {  # a row written as a plain dict, without ratio_kind
        "id": "L1",
        "what": "legacy",
        "nbops_s": 2.0,
        "anchor": "old",
        "anchor_s": 1.0,
        "ratio": 2.0,
        "target": "<= 1.2x",
        "met": False,
    }
    return [
        common.row("P2", "%%track added latency", 0.0042, "hand-written MLflow", 0.05, 0.25),
        common.speedup_row("P1b", "fingerprint 1 GB", 0.0529, "hashlib.md5", 1.697, 20),
        common.speedup_row("P1c", "fingerprint 1 GB", 0.0529, "mlflow digest", 19.0, None),
        common.speedup_row("G1", "xxh3 on 2 threads", 0.03, "1 thread", 0.036, 1.5),
        legacy,
    ]


def test_row_directions_and_targets(bench: dict[str, ModuleType]) -> None:
    time_row, speed_row, informative, missed, _ = fake_rows(bench["common"])
    assert time_row["ratio"] == pytest.approx(0.084) and time_row["met"] is True
    assert time_row["ratio_kind"] == "time" and time_row["target"] == "<= 0.25x"
    assert speed_row["ratio"] == pytest.approx(1.697 / 0.0529) and speed_row["met"] is True
    assert speed_row["ratio_kind"] == "speedup" and speed_row["target"] == ">= 20x"
    assert informative["met"] is None and informative["target"] == ""
    assert missed["met"] is False


@pytest.mark.parametrize(
    ("value", "text"),
    [(0.0529, "52.9 ms"), (1.697, "1.7 s"), (19.04, "19 s"), (3.14e-6, "3.14 µs"), (0, "0 µs")],
)
def test_seconds(bench: dict[str, ModuleType], value: float, text: str) -> None:
    assert bench["report"].seconds(value) == text


def test_table_puts_each_row_beside_its_anchor(bench: dict[str, ModuleType]) -> None:
    report = bench["report"]
    lines = report.table(fake_rows(bench["common"])).splitlines()
    header, rule, *body = lines
    starts = [header.index(label) for label in report.HEADER]
    assert starts == sorted(starts) and set(rule) <= {"-", " "}
    expected = [
        ("P2", "%%track added latency", "4.2 ms", "hand-written MLflow", "50 ms", "0.084x time",
         "<= 0.25x time", "yes"),
        ("P1b", "fingerprint 1 GB", "52.9 ms", "hashlib.md5", "1.7 s", "32.1x speed",
         ">= 20x speed", "yes"),
        ("P1c", "fingerprint 1 GB", "52.9 ms", "mlflow digest", "19 s", "359x speed", "-", "-"),
        ("G1", "xxh3 on 2 threads", "30 ms", "1 thread", "36 ms", "1.2x speed", ">= 1.5x speed",
         "NO"),
        ("L1", "legacy", "2 s", "old", "1 s", "2x time", "<= 1.2x time", "NO"),
    ]  # fmt: skip
    assert len(body) == len(expected)
    for line, cells in zip(body, expected, strict=True):
        for start, cell in zip(starts, cells, strict=True):
            assert line[start:].startswith(cell + " ") or line[start:] == cell, (line, cell)


def test_summary_counts_targets_and_names_misses_and_failures(
    bench: dict[str, ModuleType],
) -> None:
    text = bench["report"].summary(fake_rows(bench["common"]), {"bench_x": "OSError: disk"})
    assert text.splitlines() == [
        "2 of 4 targets met (1 informative rows)",
        "  missed G1: 1.2x speed, target >= 1.5x speed",
        "  missed L1: 2x time, target <= 1.2x time",
        "  bench_x failed: OSError: disk",
    ]


def test_document_is_saved_as_json_named_by_time_and_host(
    bench: dict[str, ModuleType], tmp_path: Path
) -> None:
    report = bench["report"]
    rows = fake_rows(bench["common"])
    started = datetime(2026, 11, 23, 13, 5, 9, tzinfo=UTC)
    machine = {"host": "my host/1", "cpu": "x", "cpus": 2}
    options = {"quick": True, "full": False}
    doc = report.document(rows, machine, options, started, started + timedelta(seconds=75.04))
    path = report.save(doc, tmp_path / "results")
    assert path == tmp_path / "results" / "20261123-130509-my_host_1.json"
    saved = json.loads(path.read_text(encoding="utf-8"))
    assert saved["rows"] == rows and saved["machine"] == machine and saved["options"] == options
    assert saved["duration_s"] == 75.0 and saved["errors"] == {}
    assert saved["started"] == "2026-11-23T13:05:09+00:00"


def test_machine_line(bench: dict[str, ModuleType]) -> None:
    info: dict[str, Any] = {"cpu": "Xeon", "cpus": 2, "memory_gb": 23.5, "os": "Debian 12"}
    info["python"] = "CPython 3.11"
    info |= {"load_average": [3.4, 4.5, 5.3], "load_average_end": [1.6, 3.0, 4.2]}
    assert bench["report"].machine_line(info, quick=True) == (
        "Xeon, 2 cores, 23.5 GB, Debian 12, CPython 3.11, load [3.4, 4.5, 5.3] -> "
        "[1.6, 3.0, 4.2], quick sizes"
    )


def test_machine_describes_the_host(bench: dict[str, ModuleType]) -> None:
    info = bench["report"].machine()
    assert {"cpu", "cpus", "memory_gb", "os", "python", "load_average"} <= set(info)
    assert info["cpu"] and info["cpus"] >= 1 and info["memory_gb"] > 0
    from nbops import __version__

    assert info["packages"]["nbops"] == __version__
    assert info["packages"]["mlflow"]  # installed: a version string
    json.dumps(info)


def test_collect_runs_each_module_alone_and_keeps_going_after_a_failure(
    bench: dict[str, ModuleType], tmp_path: Path
) -> None:
    (tmp_path / "bench_fake.py").write_text(FAKE_MODULE)
    (tmp_path / "bench_full.py").write_text(
        "import os\n"
        "os.environ['LEAK'] = '1'\n"
        "def rows(quick=False, full=False):\n"
        "    return [{'quick': quick, 'full': full}]\n"
    )
    (tmp_path / "bench_leak.py").write_text(
        "import os\ndef rows(quick=False):\n    return [{'leak': os.environ.get('LEAK')}]\n"
    )
    (tmp_path / "bench_broken.py").write_text("def rows(quick=False):\n    raise OSError('no')\n")
    (tmp_path / "bench_dies.py").write_text("import os\ndef rows(quick=False):\n    os._exit(3)\n")
    names = ["bench_broken", "bench_fake", "bench_dies", "bench_full", "bench_leak"]
    rows, errors = bench["run"].collect(names, {"quick": True, "full": True}, tmp_path)
    assert [r.get("id") for r in rows] == ["F1", "F2", None, None]
    assert rows[0]["nbops_s"] == 0.02  # quick reached the module
    assert rows[2] == {"quick": True, "full": True}
    assert rows[3] == {"leak": None}  # a fresh process per module
    assert errors == {
        "bench_broken": "OSError: no",
        "bench_dies": "the benchmark process exited with code 3",
    }


def test_main_prints_the_table_and_saves_the_results(
    bench: dict[str, ModuleType],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    run = bench["run"]
    (tmp_path / "bench_fake.py").write_text(FAKE_MODULE)
    monkeypatch.setattr(run, "HERE", tmp_path)
    assert run.main(["--only", "bench_fake", "--out", str(tmp_path / "out")]) == 0
    out, err = capfd.readouterr()
    assert "F1  fake cell" in out and "2 of 2 targets met" in out
    assert "benchmark chatter" not in out and "benchmark chatter" in err
    (saved,) = (tmp_path / "out").glob("*.json")
    doc = json.loads(saved.read_text())
    assert [r["id"] for r in doc["rows"]] == ["F1", "F2"]
    assert doc["options"] == {"quick": False, "full": False, "modules": ["bench_fake"]}
    with pytest.raises(SystemExit):
        run.main(["--only", "bench_nothing"])
    assert "no benchmark module bench_nothing" in capfd.readouterr().err


def test_every_registered_module_exists_and_exposes_rows(bench: dict[str, ModuleType]) -> None:
    import ast

    for name in bench["run"].MODULES:
        tree = ast.parse((BENCHMARKS / f"{name}.py").read_text())
        functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
        assert "rows" in functions, name
        assert functions["rows"].args.args[0].arg == "quick", name
