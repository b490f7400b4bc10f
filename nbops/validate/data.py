"""The entry points: :func:`write_contract` (at promote time) and :func:`validate_data` (the
pipeline's ``validate_data`` stage, ``nbops validate data``).

Files (paths relative to the pipeline folder): ``schema.yaml`` (the contract, see
:mod:`nbops.validate.contract`), ``reference/profile.json`` (see :mod:`nbops.validate.profile`),
thresholds in ``params.yaml`` ``drift:``, reports in ``reports/validate_data.{md,html,json}``
and the flat metrics in ``metrics/validate_data.json``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from nbops.errors import ConfigError, DataValidationError
from nbops.pipeline_folder import DATA_STAGE, PROFILE, SCHEMA, metrics_file
from nbops.validate import contract, drift, report, tracking
from nbops.validate.profile import infer_profile
from nbops.validate.result import DataValidation

if TYPE_CHECKING:
    import pandas as pd

    from nbops.session import Session

TABULAR = {".csv": ",", ".tsv": "\t", ".parquet": None}

__all__ = ["DataValidation", "validate_data", "write_contract"]


def is_tabular(path: str) -> bool:
    return PurePosixPath(path).suffix.lower() in TABULAR


def read_table(path: Path) -> pd.DataFrame:
    """A data file as pandas reads it by default (the same way at promote and validate time)."""
    import pandas as pd

    sep = TABULAR[path.suffix.lower()]
    try:
        return pd.read_parquet(path) if sep is None else pd.read_csv(path, sep=sep)
    except FileNotFoundError as exc:
        raise DataValidationError(
            f"data file {path} does not exist",
            fix="restore it (`dvc pull` / `dvc checkout`), or remove it from schema.yaml",
            file=str(path),
        ) from exc
    except Exception as exc:  # a parser error: the file is not what its suffix says
        raise DataValidationError(
            f"data file {path} cannot be read as {path.suffix[1:]}: {exc}",
            fix="fix the file, or restore the previous version (`dvc checkout`)",
            file=str(path),
        ) from exc


def write_contract(folder: Path, data_files: list[str]) -> list[str]:
    """Infer ``schema.yaml`` and ``reference/profile.json`` from the tabular ``data_files``
    (relative to ``folder``; other files are skipped). Returns the paths written, or []."""
    import yaml

    folder = Path(folder)
    files = sorted(dict.fromkeys(f for f in data_files if is_tabular(f)))
    if not files:
        return []
    schemas: dict[str, Any] = {}
    profiles: dict[str, Any] = {}
    for name in files:
        df = read_table(folder / name)
        schemas[name] = contract.to_mapping(contract.infer_schema(df))
        profiles[name] = infer_profile(df)
    body = yaml.safe_dump({"files": schemas}, sort_keys=False, allow_unicode=True)
    (folder / SCHEMA).write_text(contract.HEADER + body, encoding="utf-8")
    profile_path = folder / PROFILE
    profile_path.parent.mkdir(parents=True, exist_ok=True)
    profile_path.write_text(_profile_json(profiles), encoding="utf-8")
    return [SCHEMA, PROFILE]


def _profile_json(profiles: dict[str, dict[str, Any]]) -> str:
    """One line per column: readable in a diff without 2,000 lines of sample per column."""
    files = []
    for name, columns in profiles.items():
        lines = [
            f"  {json.dumps(col)}: {json.dumps(prof, allow_nan=False)}"
            for col, prof in columns.items()
        ]
        files.append(f" {json.dumps(name)}: {{\n" + ",\n".join(lines) + "\n }")
    return "{\n" + ",\n".join(files) + "\n}\n"


def validate_data(
    folder: Path, *, record: bool = True, session: Session | None = None
) -> DataValidation:
    """Check the data files of ``schema.yaml`` against their contract, then measure drift.

    Writes the reports and metrics, records the stage's run (``record``), and raises
    :class:`DataValidationError` on schema skew (after the reports are written).
    """
    from nbops.pipeline.layout import read_params, require_pipeline

    start = time.time()
    folder = require_pipeline(Path(folder), "nbops validate data", markers=())  # schema.yaml: below
    schemas = read_contract(folder)
    profiles = read_profile(folder)
    thresholds = drift.DriftThresholds.from_params(read_params(folder))
    frames = {name: read_table(folder / name) for name in schemas}
    result = DataValidation(status="passed", files=list(schemas), thresholds=thresholds)
    for name, df in frames.items():
        result.problems += contract.check_frame(df, schemas[name], name)
    if result.problems:
        result.status = "failed"
    else:
        for name, df in frames.items():
            result.drift += drift.frame_drift(df, profiles.get(name, {}), thresholds, name)
        result.drift_share, dataset = drift.dataset_drift(result.drift, thresholds)
        result.status = "drift" if dataset else "passed"
    report.write_reports(folder, result)
    _write_metrics(folder, result)
    error = _schema_error(result) if result.problems else None
    if record:
        from nbops.session import default_session

        message = f"DataValidationError: {error.message}" if error else None
        tracking.record_run(folder, result, session or default_session(), start, message)
    if error is not None:
        raise error
    return result


def _schema_error(result: DataValidation) -> DataValidationError:
    lines = [f"  {p.file}: {p.message}" for p in result.problems]
    files = sorted({p.file for p in result.problems})
    columns = sorted({p.column for p in result.problems if p.column})
    return DataValidationError(
        "the data does not match its contract (schema.yaml):\n"
        + "\n".join(lines)
        + f"\n  report: {result.reports[0]}",
        fix="fix the data, or if the change is intended edit schema.yaml / re-run "
        "`nbops promote` to infer a new contract",
        file=", ".join(files),
        columns=columns,
        report=result.reports[0],
    )


def _write_metrics(folder: Path, result: DataValidation) -> None:
    path = folder / metrics_file(DATA_STAGE)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result.metrics(), indent=1) + "\n", encoding="utf-8")


def read_contract(folder: Path) -> dict[str, Any]:
    """``{data path: pandera schema}`` from ``schema.yaml``."""
    from nbops.pipeline.layout import read_yaml

    path = folder / SCHEMA
    try:
        data = read_yaml(path)
    except Exception as exc:  # NotebookError for bad YAML: here it is a config problem
        raise ConfigError(str(exc), fix="correct schema.yaml, or restore it from git") from exc
    if data is None and not path.exists():
        raise ConfigError(
            f"{path} does not exist: there is no data contract to check",
            fix="run `nbops promote` on the notebook (it infers schema.yaml from its data)",
        )
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, dict) or not files:
        raise ConfigError(
            f"{path} must have a `files:` mapping of data paths to schemas",
            fix="restore it from git, or re-run `nbops promote` to infer it again",
        )
    return {str(k): contract.from_mapping(v, f"{path.name}: {k}") for k, v in files.items()}


def read_profile(folder: Path) -> dict[str, Any]:
    """``{data path: {column: profile}}``; {} without a profile (drift is then not measured)."""
    path = folder / PROFILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except ValueError as exc:
        raise ConfigError(
            f"{path} is not valid JSON: {exc}",
            fix="restore it from git, or re-run `nbops promote` to infer it again",
        ) from exc
    return data if isinstance(data, dict) else {}
