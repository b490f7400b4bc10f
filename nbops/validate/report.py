"""The validation reports: markdown (for the terminal and git diffs), a self-contained HTML page
(inline CSS, no scripts, nothing fetched) and JSON (for tools), all from one
:class:`~nbops.validate.result.DataValidation`. No timestamps, so an unchanged result gives
unchanged files.
"""

from __future__ import annotations

from html import escape
from pathlib import Path

from nbops.pipeline_folder import DATA_STAGE, REPORTS_DIR
from nbops.validate.result import DataValidation

REPORT_STEM = DATA_STAGE
HEADINGS = (
    "feature",
    "kind",
    "PSI",
    "KS stat",
    "KS p",
    "drifted",
    "mean ref → cur",
    "nulls ref → cur",
)
CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: left; }
th { background: #f3f3f3; }
tr.drifted td { background: #fff3cd; }
.passed { color: #1a7f37; } .drift { color: #9a6700; } .failed { color: #cf222e; }
"""


def write_reports(
    folder: Path, result: DataValidation, reports_dir: str = REPORTS_DIR
) -> list[str]:
    """Write ``<reports_dir>/validate_data.{md,html,json}``; return their paths (relative)."""
    directory = folder / reports_dir
    directory.mkdir(parents=True, exist_ok=True)
    paths = [f"{reports_dir}/{REPORT_STEM}.{ext}" for ext in ("md", "html", "json")]
    result.reports = paths
    texts = (markdown(result), html(result), result.to_json() + "\n")
    for path, text in zip(paths, texts, strict=True):
        (folder / path).write_text(text, encoding="utf-8")
    return paths


def summary_line(result: DataValidation) -> str:
    """One sentence about the drift, e.g. ``2 of 14 features drifted (14%; dataset drift at
    50%)``."""
    n, total = len(result.drifted), len(result.drift)
    share = f"{result.drift_share:.0%}"
    return (
        f"{n} of {total} features drifted ({share}; dataset drift at {result.thresholds.share:.0%})"
    )


def cli_summary(result: DataValidation) -> str:
    """What ``nbops validate data`` prints: status, the drifted features, the report."""
    lines = [f"data validation: {result.status} ({summary_line(result)})"]
    width = max((len(result.feature_name(f)) for f in result.drifted), default=0)
    for f in sorted(result.drifted, key=lambda f: -f.psi):
        ks = "" if f.ks_statistic is None else f"  KS {f.ks_statistic:.3f} (p {f.ks_pvalue:.3g})"
        lines.append(f"  drifted: {result.feature_name(f):<{width}}  PSI {f.psi:.3f}{ks}")
    if result.reports:
        lines.append(f"report: {result.reports[0]} (also .html, .json)")
    return "\n".join(lines)


def _rule(result: DataValidation) -> str:
    t = result.thresholds
    return (
        f"a feature drifts when PSI >= {t.psi}, or when the KS p-value < {t.ks_pvalue} and the KS "
        f"statistic >= {t.ks_statistic} (params.yaml `drift:`)"
    )


def _cells(result: DataValidation) -> list[list[str]]:
    rows = []
    for f in result.drift:
        rows.append(
            [
                result.feature_name(f),
                f.kind,
                f"{f.psi:.4f}",
                _num(f.ks_statistic, ".3f"),
                _num(f.ks_pvalue, ".3g"),
                "yes" if f.drifted else "no",
                f"{_num(f.reference_mean, '.4g')} → {_num(f.current_mean, '.4g')}",
                f"{f.reference_null_share:.1%} → {f.current_null_share:.1%}",
            ]
        )
    return rows


def _num(value: float | None, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def markdown(result: DataValidation) -> str:
    lines = [f"# Data validation: {result.status}", "", f"Files: {', '.join(result.files)}", ""]
    lines += ["## Schema (schema.yaml)", ""]
    if result.problems:
        lines += ["| file | column | problem |", "|---|---|---|"]
        lines += [f"| {p.file} | {p.column or ''} | {_md(p.message)} |" for p in result.problems]
        lines += [
            "",
            "Fix the data, or if the change is intended edit schema.yaml (or re-run "
            "`nbops promote` to infer a new contract).",
        ]
    else:
        lines.append("Every file matches its contract.")
    lines += ["", "## Drift (reference/profile.json)", ""]
    if result.status == "failed":
        lines.append("Not measured: the schema check failed.")
        return "\n".join(lines) + "\n"
    lines += [f"{summary_line(result)}; {_rule(result)}.", ""]
    lines += ["| " + " | ".join(HEADINGS) + " |", "|" + "---|" * len(HEADINGS)]
    lines += ["| " + " | ".join(_md(c) for c in row) + " |" for row in _cells(result)]
    return "\n".join(lines) + "\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def html(result: DataValidation) -> str:
    status = escape(result.status)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Data validation: {status}</title><style>{CSS}</style></head><body>",
        f'<h1>Data validation: <span class="{status}">{status}</span></h1>',
        f"<p>Files: {escape(', '.join(result.files))}</p>",
        "<h2>Schema (schema.yaml)</h2>",
    ]
    if result.problems:
        rows = [[p.file, p.column or "", p.message] for p in result.problems]
        parts.append(_table(("file", "column", "problem"), rows))
        parts.append(
            "<p>Fix the data, or if the change is intended edit schema.yaml (or re-run "
            "<code>nbops promote</code> to infer a new contract).</p>"
        )
    else:
        parts.append("<p>Every file matches its contract.</p>")
    parts.append("<h2>Drift (reference/profile.json)</h2>")
    if result.status == "failed":
        parts.append("<p>Not measured: the schema check failed.</p>")
    else:
        parts.append(f"<p>{escape(summary_line(result))}; {escape(_rule(result))}.</p>")
        marks = [f.drifted for f in result.drift]
        parts.append(_table(HEADINGS, _cells(result), marks))
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _table(head: tuple[str, ...], rows: list[list[str]], marks: list[bool] | None = None) -> str:
    out = ["<table>", "<tr>" + "".join(f"<th>{escape(h)}</th>" for h in head) + "</tr>"]
    for i, row in enumerate(rows):
        cls = ' class="drifted"' if marks and marks[i] else ""
        out.append(f"<tr{cls}>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>")
    out.append("</table>")
    return "\n".join(out)
