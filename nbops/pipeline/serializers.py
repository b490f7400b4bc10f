"""Typed serializers for the variables that cross step boundaries, as one table of data.

Each row says which objects it takes, the file extension it writes and how to save and load.
Saving tries the matching rows in order (a DataFrame parquet cannot hold falls back to
pickle); loading picks the row by the extension of ``artifacts/<producer>/<var>.<ext>``.
Libraries are imported only when a row is used, and an object's type is recognized without
importing pandas or numpy: if the user has such an object, its library is already loaded.

Parquet round trips keep dtypes but not Python object identity: an ``object`` column of
lists comes back as arrays. Pickle stores functions and classes by reference, so a downstream
step can load them only if its setup cells define them too (the load error says so).
"""

from __future__ import annotations

import json
import pickle
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nbops.errors import NotebookError
from nbops.pipeline_folder import ARTIFACTS_DIR

_SERIES_KEY = b"nbops.series"  # parquet schema metadata: the Series' name, as JSON
_SERIES_COLUMN = "__nbops_series__"


@dataclass(frozen=True)
class Serializer:
    """One row of the table: ``accepts(obj)`` says whether ``save`` may be tried on it."""

    name: str  # "parquet" | "npy" | "joblib" | "pickle" (the plan's vocabulary)
    ext: str
    accepts: Callable[[Any], bool]
    save: Callable[[Any, Path], None]
    load: Callable[[Path], Any]


def _is_instance(obj: Any, module: str, attr: str) -> bool:
    """``isinstance`` against a class of a library only if that library is already loaded."""
    lib = sys.modules.get(module)
    cls = getattr(lib, attr, None) if lib is not None else None
    return cls is not None and isinstance(obj, cls)


def _is_pandas(obj: Any) -> bool:
    return _is_instance(obj, "pandas", "DataFrame") or _is_instance(obj, "pandas", "Series")


def _is_ndarray(obj: Any) -> bool:
    """Exact ndarrays only: ``np.save`` would drop a masked array's mask or a matrix's type."""
    np = sys.modules.get("numpy")
    return np is not None and type(obj) is np.ndarray


def _is_estimator(obj: Any) -> bool:
    return not isinstance(obj, type) and callable(getattr(obj, "get_params", None))


def _save_parquet(obj: Any, path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    if _is_instance(obj, "pandas", "Series"):
        json.dumps(obj.name)  # a name JSON cannot hold (a tuple is fine, an object is not)
        table = pa.Table.from_pandas(obj.to_frame(name=_SERIES_COLUMN))
        meta = {**(table.schema.metadata or {}), _SERIES_KEY: json.dumps(obj.name).encode()}
        table = table.replace_schema_metadata(meta)
    else:
        table = pa.Table.from_pandas(obj)
    pq.write_table(table, path)


def _load_parquet(path: Path) -> Any:
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    name = (table.schema.metadata or {}).get(_SERIES_KEY)
    frame = table.to_pandas()
    if name is None:
        return frame
    series = frame[_SERIES_COLUMN]
    loaded = json.loads(name)
    series.name = tuple(loaded) if isinstance(loaded, list) else loaded
    return series


def _save_npy(obj: Any, path: Path) -> None:
    import numpy as np

    with path.open("wb") as handle:
        np.save(handle, obj, allow_pickle=False)  # object arrays go to pickle instead


def _load_npy(path: Path) -> Any:
    import numpy as np

    return np.load(path, allow_pickle=False)


def _save_joblib(obj: Any, path: Path) -> None:
    import joblib

    joblib.dump(obj, path)


def _load_joblib(path: Path) -> Any:
    import joblib

    return joblib.load(path)


def _save_pickle(obj: Any, path: Path) -> None:
    with path.open("wb") as handle:
        pickle.dump(obj, handle, protocol=pickle.HIGHEST_PROTOCOL)


def _load_pickle(path: Path) -> Any:
    with path.open("rb") as handle:
        return pickle.load(handle)


SERIALIZERS: tuple[Serializer, ...] = (
    Serializer("parquet", "parquet", _is_pandas, _save_parquet, _load_parquet),
    Serializer("npy", "npy", _is_ndarray, _save_npy, _load_npy),
    Serializer("joblib", "joblib", _is_estimator, _save_joblib, _load_joblib),
    Serializer("pickle", "pkl", lambda obj: True, _save_pickle, _load_pickle),
)


def candidates(obj: Any) -> list[Serializer]:
    """The rows that may save ``obj``, most specific first."""
    return [row for row in SERIALIZERS if row.accepts(obj)]


def save(obj: Any, var: str, step: str, folder: Path) -> tuple[Path, Serializer]:
    """Write ``obj`` as ``folder/<var>.<ext>`` with the first row that manages it.

    A row that fails leaves no partial file behind; if none manages, a ``NotebookError`` names
    the variable, the step and each row's reason.
    """
    folder.mkdir(parents=True, exist_ok=True)
    for old in _files_of(folder, var):
        old.unlink()  # a rerun in place must not leave two formats of one variable
    reasons = []
    for row in candidates(obj):
        path = folder / f"{var}.{row.ext}"
        try:
            row.save(obj, path)
        except Exception as exc:
            path.unlink(missing_ok=True)
            reasons.append(f"{row.name}: {type(exc).__name__}: {exc}")
            continue
        return path, row
    kind = type(obj).__name__
    raise NotebookError(
        f"step {step!r} cannot save {var!r}: a {kind} cannot be serialized ("
        + "; ".join(reasons)
        + ")",
        fix=f"make {var!r} plain data (a DataFrame, an ndarray, an estimator or a picklable "
        f"object), or compute it in each step that uses it instead of passing it between steps",
        variable=var,
        step=step,
        obj_type=kind,
    )


def load(var: str, producer: str, step: str, root: Path) -> Any:
    """Read ``<root>/artifacts/<producer>/<var>.*`` with the row its extension names."""
    folder = root / ARTIFACTS_DIR / producer
    by_ext = {row.ext: row for row in SERIALIZERS}
    found = [p for p in _files_of(folder, var) if p.name[len(var) + 1 :] in by_ext]
    if len(found) != 1:
        what = "no file" if not found else f"{len(found)} files ({', '.join(map(str, found))})"
        raise NotebookError(
            f"step {step!r} needs {var!r} from step {producer!r}, but {folder} has {what} "
            f"named {var}.*",
            fix=f"run the pipeline (`nbops run`) so step {producer!r} writes it; if it did run, "
            f"check that {producer!r} lists {var!r} in its outputs (re-run `nbops promote`)",
            variable=var,
            step=step,
            producer=producer,
        )
    path = found[0]
    row = by_ext[path.name[len(var) + 1 :]]
    try:
        return row.load(path)
    except Exception as exc:
        raise NotebookError(
            f"step {step!r} cannot load {var!r} from {path} ({row.name}): "
            f"{type(exc).__name__}: {exc}",
            fix="define the functions and classes it needs in a setup cell (tag `setup` or "
            "`functions`) so every step has them, then re-run `nbops promote` and `nbops run`",
            variable=var,
            step=step,
            producer=producer,
        ) from exc


def _files_of(folder: Path, var: str) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.name.startswith(f"{var}.") and p.is_file())
