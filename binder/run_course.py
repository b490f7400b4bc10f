"""Run every course notebook as Binder would: one CPU, at most 2 GB of memory, under 60 s each.

Used by ``binder/check`` with the Python of the fresh Binder environment (so nbclient, the
kernel and nbops are the ones ``binder/requirements.txt`` installed). Each notebook runs in its
own child process pinned to one CPU and placed in a memory cgroup limited to 2 GiB (v1 or v2,
whichever this machine lets us write): the kernel inherits both, and a notebook that needs more
is killed, as on mybinder.org. Where no cgroup can be made, the limit is checked instead of
enforced: the peak of the summed RSS of the child's whole process tree, sampled twice a second
(notebook 06 runs ``nbops serve`` and MLflow's scoring servers beside the kernel; getrusage
would only report the largest single process), must stay under it. A notebook that leaves a
process running (a server it did not stop) fails. Prints one line per notebook (seconds, peak
memory) and exits non-zero if any failed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

LIMIT = 2 << 30  # bytes: mybinder.org gives 1-2 GB
SECONDS = 60.0
EXECUTE = """
import json, resource, sys, nbformat
from nbclient import NotebookClient
nb = nbformat.read(sys.argv[1], as_version=4)
NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": "."}}
               ).execute()
usage = {who: resource.getrusage(getattr(resource, who)).ru_maxrss * 1024
         for who in ("RUSAGE_SELF", "RUSAGE_CHILDREN")}  # the kernel is a reaped child by now
open(sys.argv[2], "w").write(json.dumps(usage))
"""


class Cgroup:
    """A memory cgroup with a hard limit; ``peak()`` is its highest usage (page cache included,
    as a container's limit counts it)."""

    def __init__(self, path: Path, v2: bool) -> None:
        self.path, self.v2 = path, v2

    @classmethod
    def make(cls, name: str, limit: int) -> Cgroup | None:
        candidates = [(Path("/sys/fs/cgroup/memory"), False), (Path("/sys/fs/cgroup"), True)]
        for root, v2 in candidates:
            if v2 and "memory" not in _read(root / "cgroup.controllers"):
                continue
            try:
                (root / name).mkdir()
            except OSError:
                continue
            group = cls(root / name, v2)
            try:
                group.write("memory.max" if v2 else "memory.limit_in_bytes", str(limit))
                if v2:
                    group.write("memory.swap.max", "0")
                return group
            except OSError:
                group.remove()
        return None

    def write(self, name: str, value: str) -> None:
        (self.path / name).write_text(value)

    def enter(self) -> None:
        """Move the calling process in (from the child, before it runs the notebook)."""
        self.write("cgroup.procs", str(os.getpid()))

    def peak(self) -> int:
        text = _read(self.path / ("memory.peak" if self.v2 else "memory.max_usage_in_bytes"))
        return int(text) if text.strip().isdigit() else 0

    def remove(self) -> None:
        for _ in range(50):  # the kernel's process may take a moment to leave
            try:
                self.path.rmdir()
                return
            except OSError:
                time.sleep(0.1)


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


class TreeSampler:
    """The peak summed RSS of a process and all its descendants, sampled on a thread; and
    what of the tree outlives the process."""

    def __init__(self) -> None:
        self.peak, self.left = 0, []
        self._stop = threading.Event()
        self._pids: set[int] = set()

    def watch(self, pid: int) -> None:
        threading.Thread(target=self._run, args=(pid,), daemon=True).start()

    def _run(self, pid: int) -> None:
        import psutil

        try:
            root = psutil.Process(pid)
        except psutil.Error:
            return
        while not self._stop.wait(0.5):
            total = 0
            try:
                tree = [root, *root.children(recursive=True)]
            except psutil.Error:
                return
            for proc in tree:
                with contextlib.suppress(psutil.Error):
                    total += proc.memory_info().rss
                    self._pids.add(proc.pid)
            self.peak = max(self.peak, total)

    def stop(self) -> list[str]:
        """Stop sampling; the commands of tree processes still running a few seconds later."""
        import psutil

        self._stop.set()
        deadline = time.monotonic() + 15.0  # a server notices its kernel is gone within ~1 s
        while time.monotonic() < deadline:
            alive = [p for p in self._pids if psutil.pid_exists(p) and _not_zombie(p)]
            if not alive:
                return []
            time.sleep(0.5)
        return [" ".join(_cmdline(p))[:120] for p in alive]


def _not_zombie(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _cmdline(pid: int) -> list[str]:
    import psutil

    try:
        return psutil.Process(pid).cmdline()
    except psutil.Error:
        return [str(pid)]


def run_one(notebook: Path, limit: int) -> tuple[int, float, dict[str, int], int, bool]:
    """(exit code, seconds, peak RSS of the runner and the kernel, cgroup peak, capped)."""
    group = Cgroup.make(f"nbops-binder-{os.getpid()}-{notebook.stem}", limit)
    usage_file = notebook.with_name(f".{notebook.stem}.usage.json")

    def confine() -> None:
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one CPU, as on Binder
        if group is not None:
            group.enter()

    start = time.monotonic()
    sampler = TreeSampler()
    child = subprocess.Popen(
        [sys.executable, "-c", EXECUTE, notebook.name, str(usage_file)],
        cwd=notebook.parent,
        preexec_fn=confine,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    sampler.watch(child.pid)
    _, stderr = child.communicate()
    seconds = time.monotonic() - start
    if child.returncode:
        print(stderr[-4000:], file=sys.stderr)
    left = sampler.stop()
    usage = json.loads(_read(usage_file) or "{}")
    usage["TREE"] = sampler.peak
    usage["LEFT"] = left  # type: ignore[assignment]
    peak = group.peak() if group is not None else 0
    if group is not None:
        group.remove()
    return child.returncode, seconds, usage, peak, group is not None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--limit-mb", type=int, default=LIMIT >> 20)
    parser.add_argument("--max-seconds", type=float, default=SECONDS)
    args = parser.parse_args()
    limit, failed = args.limit_mb << 20, []
    for notebook in args.notebooks:
        code, seconds, usage, peak, capped = run_one(notebook.resolve(), limit)
        runner, kernel = usage.get("RUSAGE_SELF", 0), usage.get("RUSAGE_CHILDREN", 0)
        tree, left = usage.get("TREE", 0), usage.get("LEFT", [])
        how = f"cgroup peak {peak >> 20} MB, capped" if capped else "not capped: no cgroup"
        print(
            f"{notebook.name}: {seconds:.1f} s, peak RSS kernel {kernel >> 20} MB, "
            f"runner {runner >> 20} MB, process tree {tree >> 20} MB ({how} at "
            f"{args.limit_mb} MB)",
            flush=True,
        )
        problems = [f"exit code {code}"] if code else []
        if seconds > args.max_seconds:
            problems.append(f"took {seconds:.0f} s > {args.max_seconds:.0f} s")
        if max(kernel + runner, peak) > limit or (not capped and tree > limit):
            problems.append(f"needed more than {args.limit_mb} MB")
        if left:
            problems.append(f"left processes running: {'; '.join(left)}")
        if problems:
            failed.append(f"{notebook.name}: {', '.join(problems)}")
    for line in failed:
        print(f"FAILED {line}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
