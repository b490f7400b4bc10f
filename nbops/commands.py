"""The commands behind both ``nbops <command>`` and ``%nbops <command>``.

Each function takes a :class:`~nbops.session.Session` and returns the text to print, so the
CLI (argument parsing only) and the line magic share one implementation.
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING

from nbops import registry
from nbops.diff import diff_records, format_diff
from nbops.errors import NoStoreError, UsageError
from nbops.record import RunRecord
from nbops.session import Session
from nbops.store.sync import sync as sync_spool

if TYPE_CHECKING:
    from nbops.cache.store import CacheStore
    from nbops.monitor.result import MonitorResult
    from nbops.promote import PromoteResult

FORMATS = ("table", "json", "csv")
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
    try:
        records = session.reader().list_runs(experiment, max_results=limit)
    except NoStoreError as exc:
        if fmt != "table":
            raise
        return f"{exc.message}\n  {exc.fix}"
    if fmt == "json":
        return json.dumps([r.to_dict() for r in records], indent=1, default=str)
    if fmt == "csv":
        return runs_csv(records)
    if fmt != "table":
        raise UsageError(f"unknown format {fmt!r}", fix=f"use one of {', '.join(FORMATS)}")
    if not records:
        where = f"experiment {experiment!r}" if experiment else session.config.tracking_uri
        return f"no runs in {where}; put %%track on a cell to record one"
    return runs_table(records)


def _varying(records: Sequence[RunRecord], attr: str, limit: int) -> list[str]:
    """Keys worth a column: metrics always; params only where runs differ."""
    keys: dict[str, set[str]] = {}
    for record in records:
        for key, value in getattr(record, attr).items():
            keys.setdefault(key, set()).add(repr(value))
    wanted = [
        k for k, vals in keys.items() if attr == "metrics" or len(vals) > 1 or len(records) == 1
    ]
    return sorted(wanted)[:limit]


def runs_table(records: Sequence[RunRecord]) -> str:
    metrics = _varying(records, "metrics", 6)
    params = _varying(records, "params", 5)
    header = ["run", "name", "experiment", "status", "started", "secs", *metrics, *params]
    rows = [header]
    for r in records:
        rows.append(
            [
                (r.run_id or "")[:8],
                r.name or "",
                r.experiment or "",
                r.status,
                time.strftime("%Y-%m-%d %H:%M", time.localtime(r.start)) if r.start else "",
                f"{r.duration:.2f}" if r.duration is not None else "",
                *[_num(r.metrics.get(m)) for m in metrics],
                *[_short(r.params.get(p)) for p in params],
            ]
        )
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(line.rstrip() for line in lines)


def runs_csv(records: Sequence[RunRecord]) -> str:
    params = sorted({k for r in records for k in r.params})
    metrics = sorted({k for r in records for k in r.metrics})
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        ["run_id", "name", "experiment", "status", "start", "duration"]
        + [f"params.{p}" for p in params]
        + [f"metrics.{m}" for m in metrics]
    )
    for r in records:
        writer.writerow(
            [r.run_id, r.name, r.experiment, r.status, r.start, r.duration]
            + [r.params.get(p, "") for p in params]
            + [r.metrics.get(m, "") for m in metrics]
        )
    return out.getvalue().rstrip("\n")


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:.4g}"


def _short(value: object) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= 18 else text[:17] + "…"


def show(session: Session, ref: str, fmt: str = "text") -> str:
    session.deliver_pending()
    record = session.reader().get_run(ref)
    if fmt == "json":
        return record.to_json()
    from nbops.display import MAX_PARAMS, render_text

    lines = [render_text(record, "saved", "")]
    if len(record.params) > MAX_PARAMS:
        lines.append("all params:")
        lines += [f"    {k} = {v!r}" for k, v in sorted(record.params.items())]
    if record.context.notebook or record.context.git_commit:
        dirty = " (dirty)" if record.context.git_dirty else ""
        lines.append(
            f"notebook: {record.context.notebook or '?'}  git: "
            f"{(record.context.git_commit or '-')[:10]}{dirty}"
        )
    if record.code:
        lines += ["code:", *("    " + ln for ln in record.code.splitlines())]
    return "\n".join(lines)


def diff(session: Session, ref_a: str, ref_b: str, fmt: str = "text") -> str:
    session.deliver_pending()
    store = session.reader()
    result = diff_records(store.get_run(ref_a), store.get_run(ref_b))
    if fmt == "json":
        from dataclasses import asdict

        return json.dumps(asdict(result), indent=1, default=str)
    return format_diff(result)


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
    lines = [f"restored {len(report.restored)} quarantined record(s)"] if report.restored else []
    stores = sorted({r.store or session.config.tracking_uri for r in report.delivered})
    lines.append(f"delivered {len(report.delivered)} run(s) to {', '.join(stores) or 'MLflow'}")
    lines += [
        f"  {r.record_id[:8]} -> run {r.run_id} (experiment {r.experiment!r})"
        for r in report.delivered
    ]
    for record, reason in report.failed:
        lines.append(f"  FAILED {record.record_id[:8]}: {reason}")
    if report.failed:
        lines.append(
            "the records stay in .nbops/spool; fix the store and run `nbops sync` again (or "
            "send them to another store: `nbops sync --store URI`)"
        )
    for record, reason in report.quarantined:
        lines.append(f"  SET ASIDE {record.record_id[:8]}: MLflow refuses it: {reason}")
    if report.quarantined:
        lines.append(
            "set-aside records are kept in .nbops/spool/.quarantine with the reason; "
            "`nbops sync --retry-quarantined` tries them again"
        )
    if report.skipped:
        lines.append(f"  {len(report.skipped)} run(s) are being written by another process")
    return "\n".join(lines), not report.failed


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
    store = _cache_store(session)
    entries = store.entries()
    if fmt == "json":
        rows = [
            {"key": e.key, "size": e.size, "last_used": e.last_used, **e.manifest} for e in entries
        ]
        return json.dumps(rows, indent=1, default=str)
    total = sum(e.size for e in entries)
    head = (
        f"cache {store.folder}: {len(entries)} entr{'y' if len(entries) == 1 else 'ies'}, "
        f"{_mb(total)} of {_mb(store.max_bytes)} ([tool.nbops] cache_max_mb)"
    )
    if not entries:
        return head + "\nnothing cached yet: put %%track --cache on a cell"
    rows = [["key", "run", "made", "last used", "size", "run took", "restores"]]
    for e in entries:
        names = [n for spec in e.manifest.get("outputs", []) for n in spec.get("names", [])]
        rows.append(
            [
                e.key[:12],
                e.run,
                _when(e.manifest.get("created")),
                _when(e.last_used),
                _mb(e.size),
                f"{float(e.manifest.get('seconds', 0)):.1f} s",
                _short(", ".join(names) or "-"),
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join([head, *(line.rstrip() for line in lines)])


def cache_clear(session: Session, keys: Sequence[str] = ()) -> str:
    """`nbops cache clear [KEY...]`: remove every entry, or those whose key starts so."""
    store = _cache_store(session)
    removed = store.clear(list(keys) or None)
    freed = sum(e.size for e in removed)
    what = f"{len(removed)} entr{'y' if len(removed) == 1 else 'ies'}"
    if keys and not removed:
        return f"no cache entry has a key starting with {', '.join(keys)} (see `nbops cache ls`)"
    return f"removed {what} ({_mb(freed)}) from {store.folder}"


def _mb(size: float) -> str:
    return f"{size / 2**20:.1f} MB"


def _when(stamp: object) -> str:
    if not isinstance(stamp, int | float) or not stamp:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(stamp))


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


def promote_text(result: PromoteResult) -> str:
    """What `nbops promote` did: the steps and their dataflow, files, notes, how to run."""
    plan = result.plan
    lines = [f"promoted {plan.notebook} -> {result.out_dir} ({len(plan.steps)} step(s))"]
    for step in plan.steps:
        loads = ", ".join(f"{a.name}<-{a.producer}" for a in step.inputs) or "-"
        lines.append(f"  {step.name}: params {', '.join(step.params) or '-'}; loads {loads}")
    changed = len(result.written) + len(result.removed)
    lines.append(f"files: {changed} written/removed, {len(result.unchanged)} unchanged")
    lines += [n if n.startswith("warning:") else f"note: {n}" for n in result.notes]
    lines.append(f"run it: nbops run {result.out_dir}")
    return "\n".join(lines)


def model_list(session: Session, name: str, fmt: str = "table") -> str:
    """`nbops model list NAME`: versions newest first, aliases, metrics, the gate's decision
    and the data validation status (versions registered by a pipeline), the latest change."""
    versions = registry.list_versions(session.config, name)
    if fmt == "json":
        rows = [asdict(v) | {"created": v.created.isoformat()} for v in versions]
        return json.dumps(rows, indent=1, default=str)
    if not versions:
        return f"model {name!r} has no versions"
    metrics = sorted({k for v in versions for k in v.metrics})[:4]
    rows = [["version", "aliases", "run", "created", *metrics, "gate", "data", "last change"]]
    for v in versions:
        created = time.strftime("%Y-%m-%d %H:%M", time.localtime(v.created.timestamp()))
        rows.append(
            [
                str(v.version),
                ",".join(v.aliases) or "-",
                (v.run_id or "")[:8],
                created,
                *[_num(v.metrics.get(m)) for m in metrics],
                v.tags.get("nbops.gate.decision", "-"),  # versions the pipeline's gate made
                v.tags.get("nbops.validation.data", "-"),
                _last_change(v.history),
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(line.rstrip() for line in lines)


def _last_change(history: list[dict[str, object]]) -> str:
    if not history:
        return ""
    e = history[-1]
    what = f"{e['alias']} {e['action']}" if "alias" in e else str(e.get("op", ""))
    reason = f": {_short(e.get('reason'))}" if e.get("reason") else ""
    return f"{what} {str(e.get('at', ''))[:16]} by {e.get('by', '?')}{reason}"


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
    return change_text(
        registry.promote(session.config, name, version, challenger=challenger, reason=reason)
    )


def model_rollback(session: Session, name: str, reason: str) -> str:
    return change_text(registry.rollback(session.config, name, reason=reason))


def change_text(change: registry.RegistryChange) -> str:
    """What a promote/rollback moved, who did it and why, and how to load the champion."""
    champion = change.aliases.get(registry.CHAMPION)
    if not change.changes:
        held = f"version {champion} is the champion" if champion else "it has no champion"
        note = f"{change.note}; " if change.note else ""
        return f"model {change.name!r}: {note}nothing changed ({held})"
    lines = [f"model {change.name!r}: version {champion} is the champion ({change.op})"]
    for c in change.changes:
        old = f"v{c.old}" if c.old is not None else "-"
        new = f"v{c.new}" if c.new is not None else "- (removed)"
        lines.append(f"  {c.alias:<10} {old} -> {new}")
    reason = f"; reason: {change.reason}" if change.reason else ""
    lines.append(f"by {change.actor} at {change.at}{reason}")
    lines.append(f"load it: models:/{change.name}@{registry.CHAMPION}")
    return "\n".join(lines)
