"""The result of ``nbops level``: a Level 0/1/2 checklist, the level reached and the next step,
as text for people and JSON for tools (the checks are in :mod:`nbops.level.checks`)."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

LEVELS = {0: "manual process", 1: "ML pipeline automation", 2: "CI/CD pipeline automation"}


@dataclass(frozen=True)
class Item:
    """One line of the checklist; ``next_step`` is what to do while it is unchecked."""

    key: str
    level: int
    label: str
    ok: bool
    detail: str
    next_step: str = ""


@dataclass
class LevelReport:
    """The checklist of one project folder."""

    path: Path
    tracking_uri: str
    pipeline: Path | None  # the promoted pipeline the per-pipeline items are about
    items: list[Item]

    @property
    def level(self) -> int:
        if not all(item.ok for item in self.items if item.level == 1):
            return 0
        return 2 if all(item.ok for item in self.items) else 1

    @property
    def next_step(self) -> str:
        return next((item.next_step for item in self.items if not item.ok), "")

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "level": self.level,
            "level_name": LEVELS[self.level],
            "tracking_uri": self.tracking_uri,
            "pipeline": str(self.pipeline) if self.pipeline else None,
            "items": [asdict(item) for item in self.items],
            "next_step": self.next_step,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, ensure_ascii=False)

    def text(self) -> str:
        width = max(len(item.label) for item in self.items)
        lines = [f"nbops level: {self.path}", f"store: {self.tracking_uri}"]
        if self.pipeline:
            lines.append(f"pipeline: {shown(self.pipeline)}")
        for level, heading in ((1, ""), (2, " (the next horizon)")):
            lines += ["", f"Level {level} · {LEVELS[level]}{heading}"]
            for item in (i for i in self.items if i.level == level):
                mark = "✓" if item.ok else "✗"
                lines.append(f"  {mark} {item.label:<{width}}  {item.detail}")
        done = sum(1 for item in self.items if item.level == 1 and item.ok)
        total = sum(1 for item in self.items if item.level == 1)
        lines += ["", f"Level reached: {self.level} · {LEVELS[self.level]}"]
        if self.level == 0:
            lines[-1] += f" ({done} of {total} Level 1 items)"
        lines.append(f"Next step: {self.next_step or 'none: every item is checked'}")
        return "\n".join(lines)


def shown(path: Path) -> str:
    """A path as the user would type it here: relative to the working directory if inside."""
    try:
        rel = os.path.relpath(path, Path.cwd())
    except ValueError:
        return str(path)
    return str(path) if rel.startswith("..") else rel
