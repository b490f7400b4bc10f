"""The monitoring reports: markdown, a self-contained HTML page (the look of the
``validate_data`` report) and JSON, as ``reports/monitor.{md,html,json}``."""

from __future__ import annotations

from html import escape
from pathlib import Path

from nbops.monitor.result import MonitorResult
from nbops.validate.drift import FeatureDrift
from nbops.validate.report import CSS, _num, _table

STEM = "monitor"
SCOPED = """
.nbops-monitor table { border-collapse: collapse; margin: .5em 0; }
.nbops-monitor th, .nbops-monitor td { border: 1px solid #ccc; padding: 2px 8px; text-align: left; }
.nbops-monitor tr.drifted td { background: #fff3cd; }
"""  # a notebook's output must not restyle the page around it
HEADINGS = ("feature", "kind", "PSI", "KS stat", "KS p", "drifted", "mean ref → served")


def write_reports(folder: Path, result: MonitorResult) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{STEM}.{ext}" for ext in ("md", "html", "json")]
    result.reports = [str(p) for p in paths]
    for path, text in zip(
        paths, (markdown(result), html(result), result.to_json() + "\n"), strict=True
    ):
        path.write_text(text, encoding="utf-8")
    return result.reports


def headline(result: MonitorResult) -> str:
    if result.version is None:
        return f"monitor {result.model}: no data"
    return (
        f"monitor {result.model} v{result.version}: {result.status} ({result.rows} rows in "
        f"{result.requests} requests, {result.window()})"
    )


def _lines(result: MonitorResult) -> list[str]:
    """The findings as sentences, shared by every format."""
    lines = []
    if result.drift:
        t = result.thresholds
        lines.append(
            f"input drift: {len(result.drifted)} of {len(result.drift)} features drifted "
            f"({result.drift_share:.0%}; dataset drift at {t.share:.0%}) against {result.reference}"
        )
    if result.prediction is not None:
        p = result.prediction
        word = "drifted" if p.drifted else "stable"
        lines.append(f"prediction drift: {word} (PSI {p.psi:.3f})")
    live = result.live
    if live is not None:
        gate = f"gate score {_num(live.gate_score, '.4g')}"
        if live.value is None:
            lines.append(f"live {live.metric}: not measured ({live.note}); {gate}")
        else:
            bound = f", degraded beyond {live.bound:.4g}" if live.bound is not None else ""
            state = "DEGRADED" if live.degraded else "ok"
            lines.append(
                f"live {live.metric}: {live.value:.4g} on {live.labels} labelled rows ({gate}"
                f"{bound}): {state}" + (f"; {live.note}" if live.note else "")
            )
    lines += [f"retrain trigger: {t.name}: {t.reason}" for t in result.triggers]
    lines += [f"note: {note}" for note in result.notes]
    return lines


def cli_text(result: MonitorResult) -> str:
    lines = [headline(result), *(f"  {line}" for line in _lines(result))]
    for f in sorted(result.drifted, key=lambda f: -f.psi):
        ks = "" if f.ks_statistic is None else f"  KS {f.ks_statistic:.3f} (p {f.ks_pvalue:.3g})"
        lines.append(f"  drifted: {f.column}  PSI {f.psi:.3f}{ks}")
    if not result.triggers and result.rows:
        lines.append("  no retrain trigger")
    if result.reports:
        lines.append(f"report: {result.reports[0]} (also .html, .json)")
    return "\n".join(lines)


def _cells(features: list[FeatureDrift]) -> list[list[str]]:
    return [
        [
            f.column,
            f.kind,
            f"{f.psi:.4f}",
            _num(f.ks_statistic, ".3f"),
            _num(f.ks_pvalue, ".3g"),
            "yes" if f.drifted else "no",
            f"{_num(f.reference_mean, '.4g')} → {_num(f.current_mean, '.4g')}",
        ]
        for f in features
    ]


def _features(result: MonitorResult) -> list[FeatureDrift]:
    return [*result.drift, *([result.prediction] if result.prediction is not None else [])]


def markdown(result: MonitorResult) -> str:
    lines = [f"# {headline(result)}", ""]
    lines += [f"- {line}" for line in _lines(result)]
    features = _features(result)
    if features:
        lines += ["", "| " + " | ".join(HEADINGS) + " |", "|" + "---|" * len(HEADINGS)]
        lines += [
            "| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in _cells(features)
        ]
    return "\n".join(lines) + "\n"


def html(result: MonitorResult, page: bool = True) -> str:
    """The report page; ``page=False`` gives the fragment a notebook shows."""
    parts = [f"<h2>{escape(headline(result))}</h2>", "<ul>"]
    parts += [f"<li>{escape(line)}</li>" for line in _lines(result)]
    parts.append("</ul>")
    features = _features(result)
    if features:
        parts.append(_table(HEADINGS, _cells(features), [f.drifted for f in features]))
    body = "\n".join(parts)
    if not page:
        return f'<div class="nbops-monitor"><style>{SCOPED}</style>{body}</div>'
    title = escape(headline(result))
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f"<style>{CSS}</style></head><body>\n{body}\n</body></html>\n"
    )
