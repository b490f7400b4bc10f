"""The commands behind both ``nbops <command>`` and ``%nbops <command>``.

Each function takes a :class:`~nbops.session.Session` and returns the text to print, so the
CLI (argument parsing only) and the line magic share one implementation. They only dispatch:
every result formats itself (``text()``, ``to_json()``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

from nbops import registry
from nbops.diff import diff_records
from nbops.errors import NoStoreError, UsageError
from nbops.record import RunRecord
from nbops.run_list import FORMATS, RunList
from nbops.session import Session
from nbops.store.sync import sync as sync_spool

if TYPE_CHECKING:
    from nbops.cache.store import CacheStore
    from nbops.monitor.result import MonitorResult

MAGIC_HELP = (
    "usage: %nbops wait | sync | runs [EXPERIMENT] | show RUN | diff RUN_A RUN_B | config"
    " | level [PATH] | promotion MODEL | monitor [PIPELINE|MODEL] | check\n"
    " | cache ls|clear [KEY...]\n"
    "  wait   block until this kernel's runs are in MLflow, and report any that failed\n"
    "  sync   deliver runs kept locally (.nbops/spool) after a store failure\n"
    "  runs   list runs (newest first); show/diff: one run, or what changed between two\n"
    "  level  the project's MLOps level (Google's 0/1/2) as a checklist, and the next step\n"
    "  runs / promotion MODEL in Jupyter: the run browser / the model's promotion panel\n"
    "  monitor  drift and live metric of what nbops serve answered (report, MLflow metrics)\n"
    "  check  hidden state: variables a top-to-bottom run would not give, and the cell to re-run\n"
    "  cache  the %%track --cache entries: list them, or clear all (or those of KEY prefixes)"
)


def runs(
    session: Session, experiment: str | None = None, fmt: str = "table", limit: int = 50
) -> str:
    session.deliver_pending()
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}", fix=f"use one of {', '.join(FORMATS)}")
    try:
        records = session.reader().list_runs(experiment, max_results=limit)
    except NoStoreError as exc:
        if fmt != "table":
            raise
        return f"{exc.message}\n  {exc.fix}"
    listed = RunList(
        records, f"experiment {experiment!r}" if experiment else session.config.tracking_uri
    )
    return {"json": listed.to_json, "csv": listed.csv}.get(fmt, listed.text)()


def show(session: Session, ref: str, fmt: str = "text") -> str:
    session.deliver_pending()
    record = session.reader().get_run(ref)
    if fmt == "json":
        return record.to_json()
    from nbops.display import detail_text

    return detail_text(record)


def diff(session: Session, ref_a: str, ref_b: str, fmt: str = "text") -> str:
    session.deliver_pending()
    store = session.reader()
    result = diff_records(store.get_run(ref_a), store.get_run(ref_b))
    return result.to_json() if fmt == "json" else result.text()


def sync(
    session: Session, retry_quarantined: bool = False, store: str | None = None
) -> tuple[str, bool]:
    """Deliver the spool; returns (report, everything delivered)."""
    from nbops.config import resolve_uri
    from nbops.session import complete_context

    target = resolve_uri(store, session.config.project_root) if store else None
    report = sync_spool(
        session.config,
        complete=complete_context,
        retry_quarantined=retry_quarantined,
        store=target,
    )
    return report.text(session.config.tracking_uri), report.ok


def wait(session: Session, timeout: float | None = None) -> str:
    failures = session.flush(timeout)
    lost = list(session.lost)
    if not failures and not lost:
        return "all runs of this session are in MLflow"
    lines = []
    if failures:
        lines.append(f"{len(failures)} run(s) could not be written to MLflow:")
        lines += [f"  {r.record_id[:8]}: {type(e).__name__}: {e}" for r, e in failures]
        lines.append(
            "they are kept in .nbops/spool; fix the store, then `%nbops sync` or `nbops sync`"
        )
    for record, reason in lost:
        lines.append(f"LOST {record.name or record.record_id[:8]}: {reason}")
        lines.append("  what it recorded: " + _recorded(record))
    return "\n".join(lines)


def _recorded(record: RunRecord) -> str:
    """A lost record's params and metrics, for the user to copy."""
    return json.dumps({"params": record.params, "metrics": record.metrics}, default=str)


def config_text(session: Session) -> str:
    from nbops.links import ui_address

    c = session.config
    return "\n".join(
        [
            f"project root : {c.project_root}",
            f"tracking uri : {c.tracking_uri}",
            f"async write  : {c.async_write}",
            f"experiment   : {c.experiment or '(the notebook stem)'}",
            f"local state  : {c.state_dir}",
            f"mlflow ui    : {ui_address(c) or '(none: set ui_url to link runs to it)'}",
        ]
    )


def run_magic(session: Session, words: list[str]) -> str | None:
    """Dispatch ``%nbops WORDS``; prints the text (returns None so nothing echoes twice)."""
    command, *rest = words
    table = {
        "wait": (0, lambda: wait(session)),
        "sync": (0, lambda: sync(session)[0]),
        "runs": (None, lambda: runs(session, rest[0] if rest else None)),
        "show": (1, lambda: show(session, rest[0])),
        "diff": (2, lambda: diff(session, rest[0], rest[1])),
        "config": (0, lambda: config_text(session)),
        "level": (None, lambda: level(session, *rest[:1])),
        "monitor": (None, lambda: monitor(*rest[:1]).text()),
        "check": (0, lambda: state_check(session)),
        "cache": (None, lambda: cache_command(session, rest)),
    }
    if command not in table:
        raise UsageError(f"unknown %nbops command {command!r}", fix=MAGIC_HELP)
    arity, action = table[command]
    if arity is not None and len(rest) != arity:
        raise UsageError(f"%nbops {command} takes {arity} argument(s)", fix=MAGIC_HELP)
    print(action())
    return None


def state_check(session: Session) -> str:
    """`%nbops check`: the hidden-state check of this kernel's variables (kernel only)."""
    from nbops.capture.staleness import kernel_text
    from nbops.session import _ipython

    shell = _ipython()
    notebook = session.notebook_path(getattr(shell, "user_ns", {}))
    return kernel_text(shell, notebook)


def cache_command(session: Session, words: list[str]) -> str:
    """`%nbops cache ls | clear [KEY...]`."""
    action, *keys = words or ["ls"]
    if action == "ls" and not keys:
        return cache_ls(session)
    if action == "clear":
        return cache_clear(session, keys)
    raise UsageError(f"unknown cache command {' '.join(words)!r}", fix=MAGIC_HELP)


def _cache_store(session: Session) -> CacheStore:
    from nbops.cache.store import CacheStore

    c = session.config
    return CacheStore(c.cache_dir, int(c.cache_max_mb * 2**20))


def cache_ls(session: Session, fmt: str = "table") -> str:
    """`nbops cache ls`: the entries, most recently used first, and the cache's size."""
    from nbops.cache.listing import CacheListing

    store = _cache_store(session)
    listing = CacheListing(store, store.entries())
    return listing.to_json() if fmt == "json" else listing.text()


def cache_clear(session: Session, keys: Sequence[str] = ()) -> str:
    """`nbops cache clear [KEY...]`: remove every entry, or those whose key starts so."""
    from nbops.cache.listing import Cleared

    store = _cache_store(session)
    return Cleared(store, keys, store.clear(list(keys) or None)).text()


def level(session: Session, path: str | None = None, fmt: str = "text") -> str:
    """`nbops level [PATH]`: the checklist of PATH (default: the session's project root)."""
    from nbops.level import assess

    report = assess(path if path is not None else session.config.project_root)
    return report.to_json() if fmt == "json" else report.text()


def monitor(target: str = ".") -> MonitorResult:
    """`nbops monitor [TARGET]`: the check, its reports and MLflow metrics; the result shows
    as text in a terminal and as the HTML report in Jupyter."""
    from nbops.monitor import monitor as check

    return check(target)


def model_list(session: Session, name: str, fmt: str = "table") -> str:
    """`nbops model list NAME`: versions newest first, aliases, metrics, the gate's decision
    and the data validation status, the latest change."""
    listed = registry.VersionList(name, registry.list_versions(session.config, name))
    return listed.to_json() if fmt == "json" else listed.text()


def model_register(
    session: Session, run: str, name: str, artifact_path: str, alias: str | None, reason: str
) -> str:
    """`nbops model register RUN NAME`: RUN may be an id, an id prefix or a run name."""
    session.deliver_pending()
    run_id = session.reader().get_run(run).run_id or run
    info = registry.register(
        session.config, run_id, name, artifact_path, alias=alias or None, reason=reason
    )
    aliases = f" (alias {', '.join(info.aliases)})" if info.aliases else ""
    return f"registered {info.source} as {name!r} version {info.version}{aliases}: {info.uri}"


def model_promote(
    session: Session, name: str, version: str | None, challenger: bool, reason: str
) -> str:
    change = registry.promote(session.config, name, version, challenger=challenger, reason=reason)
    return change.text()


def model_rollback(session: Session, name: str, reason: str) -> str:
    return registry.rollback(session.config, name, reason=reason).text()
