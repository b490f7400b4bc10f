"""The one configuration path of nbops.

Precedence, highest first (documented in the README):

1. explicit arguments (``%%track --experiment``, CLI flags), applied by the caller;
2. environment variables: ``MLFLOW_TRACKING_URI`` for the store, ``NBOPS_<KEY>`` for every key;
3. ``[tool.nbops]`` in the nearest ``pyproject.toml`` (searched upwards from the working dir);
4. the defaults below: the store is ``sqlite:///<project root>/mlflow.db``.

The project root is ``NBOPS_PROJECT_ROOT`` if set, else the nearest ancestor holding
``pyproject.toml``, ``.git`` or ``.dvc``; else the working directory. Config is read fresh
on each call: it is cheap (one small TOML).
"""

from __future__ import annotations

import os
import tempfile
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from nbops.errors import ConfigError

ROOT_MARKERS = ("pyproject.toml", ".git", ".dvc")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


@dataclass(frozen=True)
class Config:
    """Settings of one nbops session; see the module docstring for where each comes from."""

    project_root: Path
    tracking_uri: str = ""
    experiment: str = ""  # default experiment when the notebook is unknown
    async_write: bool = True  # write to MLflow off the cell's critical path
    # When a tracked cell's run is delivered: "auto" (at the end of the cell in a headless
    # kernel such as papermill's, in the background with an interactive front end), "async",
    # "sync" (see nbops.capture.frontend), "spool" (`nbops run`'s stages: it delivers them)
    delivery: str = "auto"
    auto: bool = True  # infer params/metrics/data from the cell (``--no-auto`` turns it off)
    flush_timeout: float = 30.0  # seconds to wait at exit for pending writes
    notebook: str = ""  # the notebook path when nothing else finds it
    hash_max_mb: float = 64.0  # files above this are not md5-hashed on a cell's thread
    serve_dir: str = ""  # where `nbops serve` keeps its logs (default <state_dir>/serve)
    ui_url: str = ""  # MLflow's UI, for links to runs (default: a tracking server; see links)
    cache_max_mb: float = 2048.0  # `%%track --cache`: the cache's size cap (least recently used go)
    state_check: bool = True  # watch cell executions for hidden state (nbops.capture.state)

    @property
    def state_dir(self) -> Path:
        """Local state (spool of undelivered records, file-hash cache)."""
        return self.project_root / ".nbops"

    @property
    def serve_path(self) -> Path:
        """Where `nbops serve` logs requests and `nbops monitor` reads them: ``serve_dir``
        (relative to the project root), else ``<state_dir>/serve``."""
        if not self.serve_dir:
            return self.state_dir / "serve"
        return self.project_root / Path(self.serve_dir).expanduser()

    @property
    def cache_dir(self) -> Path:
        """``%%track --cache`` entries: beside the store (a SQLite file's folder), else in the
        local state folder; one cache per store, so a pipeline's steps share the notebook's."""
        prefix = "sqlite:///"
        if self.tracking_uri.startswith(prefix):
            return Path(self.tracking_uri[len(prefix) :]).parent / ".nbops" / "cache"
        return self.state_dir / "cache"

    @property
    def is_default_store(self) -> bool:
        return self.tracking_uri == default_tracking_uri(self.project_root)


def find_project_root(start: Path | None = None) -> Path:
    start = (start or Path.cwd()).resolve()
    for folder in (start, *start.parents):
        if any((folder / marker).exists() for marker in ROOT_MARKERS):
            return folder
    return start


def default_tracking_uri(root: Path) -> str:
    return f"sqlite:///{root / 'mlflow.db'}"


def load_config(start: Path | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Read ``[tool.nbops]`` and the environment into a :class:`Config`."""
    env = os.environ if env is None else env
    pinned = env.get("NBOPS_PROJECT_ROOT")  # set by `nbops run` for its steps
    root = Path(pinned).resolve() if pinned else find_project_root(start)
    table = _pyproject_table(root / "pyproject.toml")
    config = Config(project_root=root)
    values: dict[str, Any] = {}  # each coerced to its field's type
    for spec in fields(Config):
        if spec.name == "project_root":
            continue
        raw = env.get(f"NBOPS_{spec.name.upper()}", table.get(spec.name))
        if raw is not None:
            values[spec.name] = _coerce(spec.name, raw, type(getattr(config, spec.name)))
    uri = env.get("MLFLOW_TRACKING_URI") or values.get("tracking_uri")
    values["tracking_uri"] = resolve_uri(str(uri), root) if uri else default_tracking_uri(root)
    return replace(config, **values)


def _pyproject_table(path: Path) -> dict[str, object]:
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"{path} is not valid TOML: {exc}",
            fix="correct the file (nbops reads its [tool.nbops] table)",
            path=str(path),
        ) from None
    tool = data.get("tool", {})
    table = tool.get("nbops", {}) if isinstance(tool, dict) else None
    if not isinstance(table, dict):
        raise ConfigError(
            f"[tool.nbops] in {path} must be a table (found "
            f"{'tool' if not isinstance(tool, dict) else 'tool.nbops'} = a "
            f"{type(tool if not isinstance(tool, dict) else table).__name__})",
            fix="write the settings under a [tool.nbops] header (see the README, Configuration)",
            path=str(path),
        )
    unknown = set(table) - {f.name for f in fields(Config)}
    if unknown:
        raise ConfigError(
            f"unknown setting(s) {sorted(unknown)} in [tool.nbops] of {path}",
            fix="remove them; the settings are listed in the README under Configuration",
            path=str(path),
        )
    return table


# When a run is delivered; "spool" (only spool it: the parent delivers) is what `nbops run`
# sets for its stages.
DELIVERY = ("auto", "async", "sync", "spool")
# Settings with a closed set of values or a range: (check, what is allowed).
_CHECKS: dict[str, tuple[object, str]] = {
    "delivery": (lambda v: v in DELIVERY, f"one of {', '.join(DELIVERY)}"),
    "flush_timeout": (lambda v: 0 <= v < 86400, "a number of seconds from 0 to 86400"),
    "cache_max_mb": (lambda v: v >= 0, "a size in MB, 0 or more"),
}


def _coerce(name: str, raw: object, kind: type) -> object:
    value = _convert(name, raw, kind)
    check = _CHECKS.get(name)
    if check is not None and not check[0](value):  # type: ignore[operator]
        raise ConfigError(
            f"setting {name!r} must be {check[1]}, got {raw!r}",
            fix=f"set NBOPS_{name.upper()} or [tool.nbops] {name} to {check[1]}",
            setting=name,
        )
    return value


def _convert(name: str, raw: object, kind: type) -> object:
    if kind is bool:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in _TRUE | _FALSE:
            return text in _TRUE
    elif kind is float:
        try:
            return float(raw)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            pass
    else:
        return str(raw)
    raise ConfigError(
        f"setting {name!r} must be a {kind.__name__}, got {raw!r}",
        fix=f"set NBOPS_{name.upper()} or [tool.nbops] {name} to a valid {kind.__name__}",
        setting=name,
    )


def resolve_uri(uri: str, root: Path) -> str:
    """Anchor a relative ``sqlite:///file.db`` at the project root, as users expect."""
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri.startswith(prefix + "/"):
        return prefix + str(root / uri[len(prefix) :])
    return uri


def user_cache_dir() -> Path:
    """Where nbops keeps what one user's processes share (the store template, the installed
    distributions map): ``$NBOPS_CACHE_DIR``, else ``$XDG_CACHE_HOME/nbops`` or
    ``~/.cache/nbops``; a fresh temp folder when none of these is writable."""
    base = os.environ.get("NBOPS_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "nbops"
    )
    folder = Path(base)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if os.access(folder, os.W_OK | os.X_OK):
            return folder
    except OSError:
        pass
    return Path(tempfile.mkdtemp(prefix="nbops-cache-"))
