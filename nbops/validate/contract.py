"""The schema contract of a pipeline's data: a pandera ``DataFrameSchema`` per data file.

Inferred from the training data at promote time and stored as human-editable YAML
(``schema.yaml``). What goes into the contract is what a *correct* new batch can never do:

- the exact set of columns (``strict: true``: a missing or an extra column fails);
- each column's dtype, checked, never converted (``coerce: false``);
- nullability: a column without missing values in the training data must not get any;
- string/categorical columns with few distinct values: the set of allowed values (``isin``);
- numeric columns that were never negative: ``greater_than_or_equal_to: 0`` (a sign error or a
  ``-1``/``-999`` sentinel for "missing" is broken data, not drift).

The observed numeric range is deliberately NOT a contract check: a fresh batch is routinely a
little outside the training minimum/maximum, and failing the pipeline for that teaches users to
ignore failures. Range changes show up as drift (the profile), and a user who does want hard
bounds adds ``in_range: {min_value: ..., max_value: ...}`` to the column by hand.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, cast

from nbops.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd
    import pandera.pandas as pa

MAX_CATEGORIES = 20  # more distinct values than this: an identifier or free text, no ``isin``
STRING_DTYPES = {"str", "string", "string[pyarrow]", "string[python]"}
COLUMN_KEYS = {
    "dtype",
    "nullable",
    "unique",
    "coerce",
    "required",
    "regex",
    "checks",
    "parsers",
    "description",
    "title",
    "name",
    "default",
    "report_duplicates",
    "drop_invalid_rows",
    "metadata",
}
HEADER = """\
# Data contract of this pipeline: `nbops validate data` (the validate_data stage) checks every
# file below before training; any violation stops the pipeline (exit code 8) and is listed in
# reports/validate_data.md. `nbops promote` inferred it from the training data. It is yours to
# edit (pandera's YAML format):
#   files:                  one entry per data file, by its path relative to this folder
#     columns:              every column the file must have
#       dtype:              the pandas dtype, checked as is (int64, float64, bool, str, ...)
#       nullable: true      missing values are allowed (absent: none allowed)
#       isin: [...]         the allowed values of a categorical column
#       greater_than_or_equal_to: 0   the column was never negative in the training data
#       (add checks by hand, e.g. `in_range: {min_value: 0.4, max_value: 1.8}`)
#     strict: true          columns that are not listed fail
# An intended change of the data: edit this file, or re-run `nbops promote` to infer it again.
"""


@dataclass
class Problem:
    """One way a data file breaks its contract, in words a user can act on."""

    file: str
    column: str | None
    check: str
    expected: str
    found: str
    count: int
    message: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def infer_schema(df: pd.DataFrame) -> pa.DataFrameSchema:
    """The contract of a training frame (see the module docstring for what is in it)."""
    import pandera.pandas as pa

    columns = {str(name): _infer_column(df[name]) for name in df.columns}
    return pa.DataFrameSchema(columns, strict=True, coerce=False)


def _infer_column(series: pd.Series) -> pa.Column:
    import pandas as pd
    import pandera.pandas as pa

    dtype = dtype_name(series.dtype)
    values = series.dropna()
    checks = []
    kind = series.dtype
    textual = dtype in STRING_DTYPES or pd.api.types.is_object_dtype(kind)
    numeric = pd.api.types.is_numeric_dtype(kind) and not pd.api.types.is_bool_dtype(kind)
    if isinstance(kind, pd.CategoricalDtype) or textual:
        domain = _domain(values)
        if domain and len(domain) <= MAX_CATEGORIES and 2 * len(domain) <= len(values):
            checks.append(pa.Check.isin(domain))
    elif numeric and len(values) and float(values.min()) >= 0:
        checks.append(pa.Check.ge(0))
    return pa.Column(dtype, checks, nullable=bool(series.isna().any()))


def _domain(values: pd.Series) -> list[Any]:
    """The sorted distinct values, or [] when they mix types (``isin`` would compare wrongly)."""
    distinct = {_plain(v) for v in values.unique()}
    kinds = {type(v) for v in distinct}
    if len(kinds) != 1 or not kinds <= {str, int, float}:
        return []
    return sorted(distinct)


def dtype_name(dtype: Any) -> str:
    """The dtype as written in the contract: pandas' name, with every string dtype as ``str``."""
    name = str(dtype)
    return "str" if name in STRING_DTYPES else name


def to_mapping(schema: pa.DataFrameSchema) -> dict[str, Any]:
    """The schema as the plain mapping stored under ``files.<path>`` in ``schema.yaml``."""
    import yaml

    mapping = yaml.safe_load(cast(str, schema.to_yaml()))  # a string when given no stream
    for column in (mapping.get("columns") or {}).values():
        if isinstance(column, dict) and column.get("dtype") in STRING_DTYPES:
            column["dtype"] = "str"  # pandera writes "string[pyarrow]"; both check the same
    return mapping


def from_mapping(mapping: Any, where: str) -> pa.DataFrameSchema:
    """Rebuild a schema from ``schema.yaml``; ``where`` names the entry in errors."""
    import pandera.pandas as pa
    import yaml

    if not isinstance(mapping, dict) or not isinstance(mapping.get("columns"), dict):
        raise ConfigError(
            f"{where} must be a mapping with `columns:`",
            fix="restore it from git, or re-run `nbops promote` to infer the contract again",
        )
    for name, column in mapping["columns"].items():
        _check_column_keys(column, f"{where}: column {name!r}")
    try:
        return pa.DataFrameSchema.from_yaml(yaml.safe_dump(mapping))
    except Exception as exc:  # pandera raises TypeError/ValueError/its own errors
        raise ConfigError(
            f"{where} is not a valid pandera schema: {exc}",
            fix="correct the entry (see the comments at the top of schema.yaml)",
        ) from exc


def _check_column_keys(column: Any, where: str) -> None:
    """pandera silently ignores unknown keys: a typo (``in_rnage``) would disable a check."""
    from pandera.pandas import Check

    if column is None:
        return
    if not isinstance(column, dict):
        raise ConfigError(f"{where} must be a mapping", fix="write `dtype: ...` under it")
    for key in column:
        if key not in COLUMN_KEYS and not callable(getattr(Check, key, None)):
            raise ConfigError(
                f"{where}: unknown key {key!r}",
                fix="use a pandera check name (isin, in_range, greater_than_or_equal_to, ...) "
                "or a column option (dtype, nullable)",
            )


def check_frame(df: pd.DataFrame, schema: pa.DataFrameSchema, file: str) -> list[Problem]:
    """Every contract violation of ``df`` (pandera's lazy validation), as readable problems."""
    from pandera.errors import SchemaErrors

    try:
        schema.validate(df, lazy=True)
    except SchemaErrors as exc:
        return describe_failures(exc.failure_cases, df, schema, file)
    return []


def describe_failures(
    cases: pd.DataFrame, df: pd.DataFrame, schema: pa.DataFrameSchema, file: str
) -> list[Problem]:
    """Group pandera's failure cases by (column, check) and say each in one sentence."""
    problems = []
    rows = cases.to_dict("records")
    groups: dict[tuple[str | None, str], list[Any]] = {}
    for row in rows:
        column = row.get("column")
        if row.get("check") in ("column_in_dataframe", "column_in_schema"):
            column = row.get("failure_case")
        key = (None if _missing(column) else str(column), str(row.get("check")))
        groups.setdefault(key, []).append(row)
    for (column, check), group in groups.items():
        problems.append(_problem(file, column, check, group, df, schema))
    # value checks on a column of the wrong dtype only echo the dtype problem (or crash)
    retyped = {p.column for p in problems if p.check == "dtype"}
    keep = ("dtype", "not_nullable")
    problems = [p for p in problems if p.column not in retyped or p.check in keep]
    return sorted(problems, key=lambda p: (p.column or "", p.check))


def _problem(
    file: str,
    column: str | None,
    check: str,
    rows: list[dict[str, Any]],
    df: pd.DataFrame,
    schema: pa.DataFrameSchema,
) -> Problem:
    col = repr(column)
    if check == "column_in_dataframe":
        return Problem(file, column, check, "present", "missing", 1, f"column {col} is missing")
    if check == "column_in_schema":
        msg = f"column {col} is not in the contract"
        return Problem(file, column, check, "absent", "present", 1, msg)
    spec = schema.columns.get(column) if column is not None else None
    if check.startswith("dtype(") and spec is not None:
        expected = dtype_name(spec.dtype)
        found = dtype_name(df[column].dtype) if column in df.columns else "?"
        msg = f"column {col}: dtype {expected} expected, found {found}"
        return Problem(file, column, "dtype", expected, found, 1, msg)
    count = len(rows)
    if check == "not_nullable":
        noun = "null" if count == 1 else "nulls"
        msg = f"column {col}: {count} {noun} where none are allowed"
        return Problem(file, column, check, "no nulls", f"{count} {noun}", count, msg)
    stats = _check_statistics(spec, rows)
    expected = _expected(check, stats)
    examples = _examples(rows)
    msg = f"column {col}: {count} value{'s' if count != 1 else ''} {expected} (e.g. {examples})"
    return Problem(file, column, check.split("(", 1)[0], expected, examples, count, msg)


def _check_statistics(spec: pa.Column | None, rows: list[dict[str, Any]]) -> dict[str, Any]:
    number: Any = rows[0].get("check_number")
    if spec is None or _missing(number) or not 0 <= int(number) < len(spec.checks):
        return {}
    return dict(spec.checks[int(number)].statistics or {})


def _expected(check: str, stats: dict[str, Any]) -> str:
    """How the failing values differ from the contract, e.g. ``outside [0.48, 1.71]``."""
    name = check.split("(", 1)[0]
    if name == "in_range" and {"min_value", "max_value"} <= stats.keys():
        return f"outside [{stats['min_value']}, {stats['max_value']}]"
    if name == "isin" and "allowed_values" in stats:
        return f"not in the allowed values {sorted(stats['allowed_values'], key=str)}"
    if name == "notin" and "forbidden_values" in stats:
        return f"in the forbidden values {sorted(stats['forbidden_values'], key=str)}"
    bounds = {
        "greater_than_or_equal_to": ("below", "min_value"),
        "greater_than": ("at or below", "min_value"),
        "less_than_or_equal_to": ("above", "max_value"),
        "less_than": ("at or above", "max_value"),
    }
    if name in bounds and bounds[name][1] in stats:
        word, key = bounds[name]
        return f"{word} {stats[key]}"
    return f"failing {check}"


def _examples(rows: list[dict[str, Any]], limit: int = 3) -> str:
    seen: list[str] = []
    for row in rows:
        text = repr(_plain(row.get("failure_case")))
        if text not in seen:
            seen.append(text)
        if len(seen) == limit:
            break
    return ", ".join(seen)


def _plain(value: Any) -> Any:
    """numpy scalars as Python values, so examples read ``2.5`` rather than ``np.float64(2.5)``."""
    item = getattr(value, "item", None)
    return item() if callable(item) else value


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))
