"""Run every course notebook as Binder would: one CPU, at most 2 GB of memory, under 60 s each.

Used by ``binder/check`` with the Python of the fresh Binder environment (so nbclient, the
kernel and nbops are the ones ``binder/requirements.txt`` installed). Each notebook runs in its
own child process pinned to one CPU and placed in a memory cgroup limited to 2 GiB (v1 or v2,
whichever this machine lets us write): the kernel inherits both, and a notebook that needs more
is killed, as on mybinder.org. Where no cgroup can be made, the limit is checked instead of
enforced: the peak RSS of the child and its kernel (``RUSAGE_CHILDREN``) must stay under it.
Prints one line per notebook (seconds, peak memory) and exits non-zero if any failed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
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


def run_one(notebook: Path, limit: int) -> tuple[int, float, dict[str, int], int, bool]:
    """(exit code, seconds, peak RSS of the runner and the kernel, cgroup peak, capped)."""
    group = Cgroup.make(f"nbops-binder-{os.getpid()}-{notebook.stem}", limit)
    usage_file = notebook.with_name(f".{notebook.stem}.usage.json")

    def confine() -> None:
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one CPU, as on Binder
        if group is not None:
            group.enter()

    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", EXECUTE, notebook.name, str(usage_file)],
        cwd=notebook.parent,
        preexec_fn=confine,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.monotonic() - start
    if done.returncode:
        print(done.stderr[-4000:], file=sys.stderr)
    usage = json.loads(_read(usage_file) or "{}")
    peak = group.peak() if group is not None else 0
    if group is not None:
        group.remove()
    return done.returncode, seconds, usage, peak, group is not None


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
        how = f"cgroup peak {peak >> 20} MB, capped" if capped else "not capped: no cgroup"
        print(
            f"{notebook.name}: {seconds:.1f} s, peak RSS kernel {kernel >> 20} MB, "
            f"runner {runner >> 20} MB ({how} at {args.limit_mb} MB)",
            flush=True,
        )
        problems = [f"exit code {code}"] if code else []
        if seconds > args.max_seconds:
            problems.append(f"took {seconds:.0f} s > {args.max_seconds:.0f} s")
        if max(kernel + runner, peak) > limit:
            problems.append(f"needed more than {args.limit_mb} MB")
        if problems:
            failed.append(f"{notebook.name}: {', '.join(problems)}")
    for line in failed:
        print(f"FAILED {line}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
