"""``%%track --cache`` in an in-process IPython shell (runs only spooled, no MLflow): what is
restored, what is refused with a note, the store's size cap, ``nbops cache ls|clear``."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from nbops.cache.store import CacheStore
from nbops.cli import main
from nbops.config import Config


@pytest.fixture
def sh(config: Config) -> Iterator[Any]:
    from IPython.core.interactiveshell import InteractiveShell

    from nbops.magics import NbopsMagics
    from nbops.session import Session

    shell = InteractiveShell.instance()
    session = Session(replace(config, delivery="spool"))
    shell.register_magics(NbopsMagics(shell, session=session))
    yield shell
    shell.user_ns.clear()
    shell.reset()


def run(shell: Any, capsys: pytest.CaptureFixture[str], code: str) -> tuple[str, str]:
    """Run a cell; (its cache line, everything printed)."""
    result = shell.run_cell(code, store_history=True)
    out = capsys.readouterr().out
    assert result.error_in_exec is None, out
    match = re.search(r"^  cache: (.*)$", out, re.MULTILINE)
    return (match.group(1) if match else ""), out


def test_names_aliases_modules_deletions_files_and_output_are_restored(
    sh: Any, capsys: pytest.CaptureFixture[str], project: Path
) -> None:
    sh.run_cell("import numpy as np\nbase = np.arange(10.0)\nscratch = 1", store_history=True)
    cell = (
        "%%track --cache\n"
        "import json\n"
        "doubled = base * 2\n"
        "same = base\n"
        "twice = doubled\n"
        "del scratch\n"
        "open('out.json', 'w').write(json.dumps({'n': len(base)}))\n"
        "print('sum', doubled.sum())\n"
        "doubled.max()"
    )
    note, first = run(sh, capsys, cell)
    assert note.startswith("ran; stored in the cache"), first
    sh.run_cell("del json, doubled, same, twice\nscratch = 2", store_history=True)
    (project / "out.json").unlink()
    note, again = run(sh, capsys, cell)
    assert note.startswith("cached from run "), again
    ns = sh.user_ns
    assert ns["same"] is ns["base"], "a name bound to an unchanged input stays that object"
    assert ns["twice"] is ns["doubled"] and list(ns["doubled"]) == [2.0 * i for i in range(10)]
    assert ns["json"].__name__ == "json" and "scratch" not in ns
    assert (project / "out.json").read_text() == '{"n": 10}'
    assert "sum 90.0" in again and "Out[" in again and "18.0" in again


def test_what_cannot_be_restored_is_named_and_the_cell_runs(
    sh: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    note, _ = run(sh, capsys, "%%track --cache\ndef helper(x):\n    return x + 1\ny = helper(1)")
    assert note == (
        "ran, not cached: it defines helper: nbops restores values, not definitions; put the "
        "definition in a cell of its own"
    )
    note, _ = run(sh, capsys, "%%track --cache\nsquares = (i * i for i in range(3))")
    assert note.startswith("ran, not cached: squares (a generator) cannot be stored"), note
    for _ in range(2):  # still runs every time
        assert run(sh, capsys, "%%track --cache\nsquares = (i * i for i in range(3))")[0]


def test_force_serves_a_cell_that_reads_the_clock(
    sh: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    sh.run_cell("import time", store_history=True)
    cell = "time.sleep(0.2)\nstamp = time.time()"
    note, _ = run(sh, capsys, "%%track --cache\n" + cell)
    assert note == (
        "ran: not served from the cache: line 2: time.time() reads the clock "
        "(%%track --cache=force serves it from the cache anyway)"
    )
    run(sh, capsys, "%%track --cache=force\n" + cell)
    stamp = sh.user_ns["stamp"]
    note, _ = run(sh, capsys, "%%track --cache=force\n" + cell)
    assert note.startswith("cached from run ") and sh.user_ns["stamp"] == stamp


def test_an_unseeded_model_is_never_stored(sh: Any, capsys: pytest.CaptureFixture[str]) -> None:
    sh.run_cell(
        "import numpy as np\nfrom sklearn.ensemble import RandomForestClassifier\n"
        "X = np.arange(40.0).reshape(20, 2)\ny = np.arange(20) % 2",
        store_history=True,
    )
    cell = "%%track --cache\nmodel = RandomForestClassifier(n_estimators=5).fit(X, y)"
    for _ in range(2):
        note, _ = run(sh, capsys, cell)
        assert note.startswith(
            "ran, not stored: model (RandomForestClassifier) has random_state=None"
        ), note


def test_a_broken_entry_is_dropped_and_the_cell_runs(
    sh: Any, capsys: pytest.CaptureFixture[str], config: Config
) -> None:
    sh.run_cell("import numpy as np\nbase = np.arange(3.0)", store_history=True)
    run(sh, capsys, "%%track --cache\nout = base + 1")
    [entry] = CacheStore(config.cache_dir, 2**30).entries()
    for value in (entry.folder / "values").iterdir():
        value.write_bytes(b"not a value")
    note, _ = run(sh, capsys, "%%track --cache\nout = base + 1")
    assert note.startswith(f"ran: the cache entry of run {entry.run} could not be restored"), note
    assert list(sh.user_ns["out"]) == [1.0, 2.0, 3.0]


def test_the_size_cap_evicts_the_least_recently_used(
    sh: Any, capsys: pytest.CaptureFixture[str], config: Config
) -> None:
    session = sh.magics_manager.registry["NbopsMagics"].session
    session.__dict__["config"] = replace(config, delivery="spool", cache_max_mb=1.5)
    sh.run_cell("import numpy as np", store_history=True)
    for n in (1, 2, 3):  # 0.8 MB each: at most one fits with the next
        run(sh, capsys, f"%%track --cache\nblock = np.full(100_000, {n}.0)")
    store = CacheStore(config.cache_dir, int(1.5 * 2**20))
    assert len(store.entries()) == 1 and store.total() <= store.max_bytes
    note, _ = run(sh, capsys, "%%track --cache\nbig = np.zeros(300_000)")
    assert note.startswith("ran, not cached: its outputs (2.3 MB) are larger than the cache's")


def test_cache_ls_and_clear_on_the_command_line(
    sh: Any, capsys: pytest.CaptureFixture[str], config: Config
) -> None:
    sh.run_cell("import numpy as np", store_history=True)
    run(sh, capsys, "%%track --cache\na = np.ones(3)")
    run(sh, capsys, "%%track --cache\nb = np.ones(4)")
    keys = [e.key for e in CacheStore(config.cache_dir, 2**30).entries()]
    assert main(["cache", "ls"]) == 0
    listing = capsys.readouterr().out
    assert "2 entries" in listing and keys[0][:12] in listing and "a" in listing
    assert main(["cache", "clear", keys[0][:6]]) == 0
    assert capsys.readouterr().out.startswith("removed 1 entry")
    sh.run_cell("%nbops cache clear")
    assert "removed 1 entry" in capsys.readouterr().out
    assert main(["cache", "clear", "ffff"]) == 0
    assert "no cache entry has a key starting with ffff" in capsys.readouterr().out


def test_a_raising_cell_stores_nothing_and_says_so(
    sh: Any, capsys: pytest.CaptureFixture[str], config: Config
) -> None:
    result = sh.run_cell("%%track --cache\nhalf = 1\nraise ValueError('no data')")
    out = capsys.readouterr().out
    assert isinstance(result.error_in_exec, ValueError)
    assert "  cache: ran, not cached: it raised ValueError" in out
    assert CacheStore(config.cache_dir, 2**30).entries() == []


def test_secrets_are_never_written_to_the_cache(
    sh: Any, capsys: pytest.CaptureFixture[str], config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SERVICE_TOKEN", "tok-7c1e9a4b2d")
    sh.run_cell("import os", store_history=True)
    note, _ = run(sh, capsys, "%%track --cache\ntoken = os.environ['SERVICE_TOKEN']")
    assert note.startswith("ran: not served from the cache: line 1: os.environ['SERVICE_TOKEN']")
    assert "reads an environment variable" in note
    note, _ = run(sh, capsys, "%%track --cache\napi_key = 'sk-live-4f8a9c2e1b7d6a3f'\nn = 1")
    assert note == "ran, not cached: api_key holds a secret (nbops never writes one to disk)"
    note, _ = run(sh, capsys, "%%track --cache\nprint('password=hunter2pass')")
    assert note.startswith("ran, not cached: what it prints holds a secret")
    entries = CacheStore(config.cache_dir, 2**30).entries()
    assert entries == [] or all(
        "hunter2" not in p.read_text(errors="ignore")
        for e in entries
        for p in e.folder.rglob("*")
        if p.is_file()
    )
