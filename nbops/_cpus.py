"""How many CPUs this process may use: what a Binder pod, ``taskset`` or a container's cpuset
allows, not how many the host has (``os.cpu_count``). Work done on a second thread or ahead of
time only pays when there is a second one."""

from __future__ import annotations

import os


def usable() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1
