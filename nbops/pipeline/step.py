"""``nbops step NOTEBOOK``: execute one step notebook with papermill (what each DVC stage runs).

Only the step's own parameters (the names its ``parameters`` cell assigns) are injected, with
their values from ``params.yaml``, so DVC's per-stage ``params`` and what the kernel sees agree.
The executed notebook goes to ``reports/``; a failing cell becomes an :class:`NbopsError`
naming the step, the cell and the end of the traceback, and the process exits non-zero so DVC
stops the pipeline there.
"""

from __future__ import annotations

import ast
import contextlib
import datetime
import os
import re
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from nbops.errors import NbopsError, NotebookError
from nbops.pipeline import layout
from nbops.pipeline.runtime import NOTEBOOK_ENV

DEFAULT_KERNEL = "python3"
_STEP_FILE = re.compile(r"^\d+_(.+)$")
_KERNEL_ENV = {"PYDEVD_DISABLE_FILE_VALIDATION": "1"}  # ipykernel's debugger banner on stderr


def run_step(notebook: str | Path) -> Path:
    """Execute ``notebook`` (a step of a promoted pipeline); return the executed report's path.

    Raises NbopsError when a cell fails (the report keeps the outputs up to the failure).
    """
    path = Path(notebook).resolve()
    folder = pipeline_folder(path)
    nb = layout.read_notebook(path)
    name = step_name(path)
    parameters = step_parameters(nb, layout.read_params(folder), name)
    kernel = ((nb.get("metadata") or {}).get("kernelspec") or {}).get("name") or DEFAULT_KERNEL
    report = folder / layout.REPORTS_DIR / path.name
    report.parent.mkdir(parents=True, exist_ok=True)
    with _without_slow_optional_imports():
        import papermill
        from papermill.exceptions import PapermillExecutionError

    env = {NOTEBOOK_ENV: str(path), **_KERNEL_ENV}
    with _environ(env):
        try:
            papermill.execute_notebook(
                str(path),
                str(report),
                parameters=parameters,
                kernel_name=kernel,
                progress_bar=False,
                cwd=str(folder),
            )
        except PapermillExecutionError as exc:
            raise cell_error(name, nb, exc, _relative(report, folder), report) from None
        except Exception as exc:
            if type(exc).__name__ != "NoSuchKernel":
                raise
            raise NbopsError(
                f"step {name!r}: no Jupyter kernel named {kernel!r}",
                fix="install it (`python -m ipykernel install --user --name NAME`) or change "
                "the kernelspec of the source notebook and re-run `nbops promote`",
                step=name,
            ) from None
    return report


def pipeline_folder(notebook: Path) -> Path:
    """The nearest folder above the notebook holding ``dvc.yaml`` (else the working dir)."""
    for folder in notebook.parents:
        if (folder / layout.DVC_FILE).is_file() or (folder / layout.PARAMS_FILE).is_file():
            return folder
    return Path.cwd()


def step_name(notebook: Path) -> str:
    """``steps/02_train.ipynb`` -> ``train``."""
    match = _STEP_FILE.match(notebook.stem)
    return match.group(1) if match else notebook.stem


def step_parameters(nb: dict[str, Any], params: dict[str, Any], step: str) -> dict[str, Any]:
    """``params.yaml`` values of the names the step's ``parameters`` cell assigns."""
    names: list[str] = []
    for source in layout.tagged_code(nb, layout.PARAMETERS_TAG):
        try:
            tree = ast.parse(source)
        except SyntaxError as exc:
            raise NotebookError(
                f"step {step!r}: its parameters cell is not valid Python ({exc.msg})",
                fix="re-run `nbops promote --force` to regenerate the step",
                step=step,
            ) from None
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.append(node.id)
    values = {name: params[name] for name in dict.fromkeys(names) if name in params}
    for name, value in values.items():
        _check_value(step, name, value)
    return values


def _check_value(step: str, name: str, value: Any) -> None:
    """papermill turns dates, tuples, sets and dict keys into strings: refuse rather than change
    a type (a hand-edited ``{1: one}`` in params.yaml would reach the step as ``{"1": "one"}``)."""
    if isinstance(value, list):
        for item in value:
            _check_value(step, name, item)
    elif isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                _check_value(step, name, (key,))  # refused below, naming the parameter
            _check_value(step, name, item)
    elif isinstance(value, datetime.date) or not isinstance(value, str | int | float | type(None)):
        raise NotebookError(
            f"params.yaml: {name} = {value!r} ({type(value).__name__}) cannot be passed to step "
            f"{step!r} as a Python literal",
            fix=f"quote it in params.yaml ({name}: '{value}') and convert it in the notebook",
            step=step,
            param=name,
        )


def cell_error(
    name: str, nb: dict[str, Any], exc: Any, report: str, executed: Path | None = None
) -> NbopsError:
    """The step, the failing cell (the source notebook's number and first line, from the step
    cell's metadata), the user's own lines of the traceback, and the fix, from papermill's
    PapermillExecutionError (``executed``: the report, which maps execution counts to cells)."""
    from nbops.pipeline.failure import describe

    return describe(name, nb, exc, report, executed)


def _relative(path: Path, folder: Path) -> str:
    try:
        return str(path.relative_to(folder))
    except ValueError:
        return str(path)


@contextlib.contextmanager
def _environ(values: dict[str, str]) -> Iterator[None]:
    """Set variables for the kernel (it inherits this process's environment), then restore."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


@contextlib.contextmanager
def _without_slow_optional_imports() -> Iterator[None]:
    """``import nbformat`` pulls jsonschema, which builds rfc3987_syntax's grammar (~1 s per
    step) for a format check notebooks never use; jsonschema treats a failed import as "format
    unavailable". The block is lifted afterwards so others can still import the module."""
    blocked = "jsonschema" not in sys.modules and "rfc3987_syntax" not in sys.modules
    if blocked:
        sys.modules["rfc3987_syntax"] = None  # type: ignore[assignment]
    try:
        yield
    finally:
        if blocked and sys.modules.get("rfc3987_syntax", 0) is None:
            del sys.modules["rfc3987_syntax"]


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m nbops.pipeline.step NOTEBOOK`` (what ``nbops step`` does)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m nbops.pipeline.step NOTEBOOK", file=sys.stderr)
        return 2
    try:
        run_step(args[0])
    except NbopsError as exc:
        print(f"nbops: error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
