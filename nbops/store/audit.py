"""The audit trail of a registered model version: one short tag, the history as an artifact.

MLflow keeps no alias history, so nbops records every alias change. It used to do so in a
dozen ``nbops.*`` tags per version (with a JSON history of a thousand characters), which the
registry's UI lists in full. Now a version carries one tag, ``nbops.audit``: one line saying
which aliases it holds since when, by whom and why, and where the rest is. The rest (every
event, oldest first, and the gate's verdict on the version) is a JSON document beside the
model's files: ``nbops/registry/<model>/v<version>.json`` among the artifacts of the version's
LoggedModel (or of its run, for versions of run artifacts).

Versions written before keep their tags; :func:`legacy` reads them.
"""

from __future__ import annotations

import contextlib
import json
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbops.store.downloads import quiet

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion
    from mlflow.tracking import MlflowClient

Event = dict[str, Any]
TAG_AUDIT = "nbops.audit"
TAG_HISTORY = "nbops.history"  # the history tag of versions registered before the artifact
MAX_LINE = 250
_UNSAFE = re.compile(r"[^\w.-]")


def folder(name: str) -> str:
    return f"nbops/registry/{_UNSAFE.sub('_', name)}"


def document_path(name: str, version: int) -> str:
    """Where a version's history lives among its model's artifacts."""
    return f"{folder(name)}/v{version}.json"


def audit_line(version: int, aliases: list[str], events: list[Event], name: str) -> str:
    """``champion since 2026-12-06T17:45:00+00:00 (promote by bob: beats v1); 4 events in
    nbops/registry/iris/v2.json`` (what the registry UI shows of the trail)."""
    held = ", ".join(aliases) or "no alias"
    last = events[-1] if events else {}
    what = f"{last.get('op', 'register')} by {last.get('by', '?')}"
    if last.get("reason"):
        what += f": {last['reason']}"
    line = f"{held} since {last.get('at', '?')} ({what})"
    tail = f"; {len(events)} event(s) in {document_path(name, version)}"
    room = MAX_LINE - len(tail)
    line = line if len(line) <= room else line[: room - 1] + "…"
    return line + tail


def write(client: MlflowClient, mv: ModelVersion, document: dict[str, Any]) -> None:
    """Store ``document`` (``{"events": [...], "tags": {...}}``) beside the version's model."""
    version = int(mv.version)
    with tempfile.TemporaryDirectory(prefix="nbops-audit-") as tmp:
        path = Path(tmp) / f"v{version}.json"
        path.write_text(json.dumps(document, indent=1, sort_keys=True), encoding="utf-8")
        model_id = _model_id(mv)
        if model_id:
            client.log_model_artifact(model_id, str(path), folder(mv.name))
        else:
            client.log_artifact(mv.run_id, str(path), folder(mv.name))


def read(client: MlflowClient, mv: ModelVersion, tracking_uri: str) -> dict[str, Any] | None:
    """The version's document, None when it has none (registered before, or by hand)."""
    relative = document_path(mv.name, int(mv.version))
    with tempfile.TemporaryDirectory(prefix="nbops-audit-") as tmp, quiet():
        try:
            model_id = _model_id(mv)
            if model_id:
                import mlflow.artifacts

                location = client.get_logged_model(model_id).artifact_location
                local = mlflow.artifacts.download_artifacts(
                    artifact_uri=f"{location}/{relative}", dst_path=tmp, tracking_uri=tracking_uri
                )
            elif mv.run_id:
                local = client.download_artifacts(mv.run_id, relative, tmp)
            else:
                return None
            document = json.loads(Path(local).read_text(encoding="utf-8"))
        except Exception as exc:
            if _missing(exc):
                return None
            raise
    return document if isinstance(document, dict) else None


def legacy(tags: dict[str, str]) -> list[Event]:
    """The history of a version registered before the artifact: its ``nbops.history`` tag."""
    try:
        history = json.loads(tags.get(TAG_HISTORY) or "[]")
    except ValueError:
        return []  # edited by hand: start over rather than fail a promotion
    return [e for e in history if isinstance(e, dict)] if isinstance(history, list) else []


def events_of(document: dict[str, Any] | None) -> list[Event]:
    events = (document or {}).get("events")
    return [e for e in events if isinstance(e, dict)] if isinstance(events, list) else []


def tags_of(document: dict[str, Any] | None) -> dict[str, str]:
    tags = (document or {}).get("tags")
    return {str(k): str(v) for k, v in tags.items()} if isinstance(tags, dict) else {}


def _model_id(mv: ModelVersion) -> str | None:
    model_id = getattr(mv, "model_id", None)
    if not model_id and str(mv.source).startswith("models:/"):
        model_id = str(mv.source).split("/")[1]
    return model_id or None


def _missing(exc: BaseException) -> bool:
    """A document that is not there (MLflow's error code, or a missing local file)."""
    with contextlib.suppress(Exception):
        if getattr(exc, "error_code", None) == "RESOURCE_DOES_NOT_EXIST":
            return True
    return isinstance(exc, FileNotFoundError | OSError) or "No such file" in str(exc)
