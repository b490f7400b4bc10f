"""Is a process still there? (Leftover files are named by the pid that made them.)"""

from __future__ import annotations

import os


def alive(pid: object) -> bool:
    """True while ``pid`` names a live process (owned by anyone); False for a bad pid."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    if os.name == "nt":  # os.kill(pid, 0) would terminate the process on Windows
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: alive, owned by someone else
        return True
    return True
