"""The zygote (the warm executor's fork server), driven as the executor drives it: a real
process that imports, forks and reports its children's exits."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from nbops.executor.forks import Zygote

HELPER = '''
import json, signal, sys


def report(argv):
    """Run in a forked child: what a new interpreter would have."""
    old = signal.set_wakeup_fd(-1)
    state = {"sigchld_default": signal.getsignal(signal.SIGCHLD) == signal.SIG_DFL,
             "wakeup_fd": old, "slow": sorted(m for m in sys.modules if m.startswith("slow_"))}
    open(argv[0], "w").write(json.dumps(state))
    return int(argv[1])
'''


@pytest.fixture
def zygote(tmp_path: Path) -> Iterator[Zygote]:
    """A zygote that can import the test's modules: a helper, and three that take a while."""
    (tmp_path / "zygote_helper.py").write_text(HELPER)
    for n in (1, 2, 3):
        (tmp_path / f"slow_{n}.py").write_text("import time\ntime.sleep(0.4)\n")
    path = os.pathsep.join([str(tmp_path), *sys.path])
    running = Zygote({**os.environ, "PYTHONPATH": path})
    try:
        yield running
    finally:
        running.close()


def _call(zygote: Zygote, tmp_path: Path, code: int, eager: bool = True) -> tuple[int | None, dict]:
    out = tmp_path / f"state-{code}.json"
    child = zygote.fork(
        "call", [str(out), str(code)], dict(os.environ), str(tmp_path), [1, 2],
        needs=["zygote_helper"], eager=eager, target="zygote_helper:report",
    )  # fmt: skip
    return child.wait(30), json.loads(out.read_text())


def test_a_child_starts_like_a_new_interpreter_and_its_exit_is_reported(
    zygote: Zygote, tmp_path: Path
) -> None:
    """The zygote wakes on SIGCHLD; its children must not inherit that: a kernel's own
    subprocesses (``!cmd``) need the default disposition."""
    code, state = _call(zygote, tmp_path, 3)
    assert code == 3
    assert state["sigchld_default"] and state["wakeup_fd"] == -1
    code, _ = _call(zygote, tmp_path, 0)
    assert code == 0


def test_settle_drops_the_preloads_no_fork_waits_for(zygote: Zygote, tmp_path: Path) -> None:
    """After a stage failed (DVC starts nothing more), what the last delivery needs is
    imported next, not after the modules of stages that will never run."""
    zygote.preload(["slow_1", "slow_2", "slow_3"])
    zygote.settle()
    code, state = _call(zygote, tmp_path, 0, eager=False)  # queued behind the preloads
    assert code == 0
    assert "slow_3" not in state["slow"] and "slow_3" not in zygote.imported


def test_without_settle_the_preloads_come_first(zygote: Zygote, tmp_path: Path) -> None:
    """The counterpart: a fork that does not ask to go first waits for the preload list."""
    zygote.preload(["slow_1", "slow_2", "slow_3"])
    code, state = _call(zygote, tmp_path, 0, eager=False)
    assert code == 0
    assert state["slow"] == ["slow_1", "slow_2", "slow_3"]
