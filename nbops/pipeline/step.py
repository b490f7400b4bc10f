"""``nbops step NOTEBOOK``: execute one step notebook with papermill (what each DVC stage runs).

Only the step's own parameters (the names its ``parameters`` cell assigns) are injected, with
their values from ``params.yaml``, so DVC's per-stage ``params`` and what the kernel sees agree.
The executed notebook goes to ``reports/``; a failing cell becomes an :class:`NbopsError`
naming the step, the cell and the end of the traceback, and the process exits non-zero so DVC
stops the pipeline there. Reports get committed or pushed with the pipeline, so their outputs
(and the error) are scrubbed of secrets (:func:`~nbops.capture.redact.scrub_text`: an output
that prints an environment value or a URL with a password), and a secret put into
``params.yaml`` by hand is refused before the kernel starts.
"""

from __future__ import annotations

import ast
import contextlib
import datetime
import json
import os
import re
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from nbops._lazy import without_slow_optional_imports
from nbops.errors import NbopsError, NotebookError
from nbops.pipeline import layout
from nbops.pipeline.runtime import NOTEBOOK_ENV

DEFAULT_KERNEL = "python3"
_STEP_FILE = re.compile(r"^\d+_(.+)$")
_KERNEL_ENV = {"PYDEVD_DISABLE_FILE_VALIDATION": "1"}  # ipykernel's debugger banner on stderr
TIMING_MARK = "nbops: step"  # `nbops: step 'train' took 1.20 s, its cells 0.31 s`


class NotWarm(Exception):
    """The warm executor cannot run this step (another kernel): the caller runs it cold."""


# (kernel name, the kernel's environment, its folder) -> a kernel manager, or None: not warm
KernelManagers = Callable[[str, Mapping[str, str], str], Any]


@dataclass
class StepOutcome:
    """An executed step: its report, and the seconds its cells took (papermill's timings)."""

    report: Path
    cells_seconds: float


def run_step(
    notebook: str | Path,
    kernel_manager: KernelManagers | None = None,
    env: Mapping[str, str] | None = None,
) -> StepOutcome:
    """Execute ``notebook`` (a step of a promoted pipeline) into its report.

    By default papermill starts a new kernel (the cold path). The warm executor passes
    ``kernel_manager`` (a kernel forked from its zygote, with the step's environment ``env``
    and folder; the executor stops it) instead; it returns None for a kernel it cannot fork
    (:class:`NotWarm`).
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
    with without_slow_optional_imports():
        import papermill
        from papermill.exceptions import PapermillExecutionError

    step_env = {NOTEBOOK_ENV: str(path), **_KERNEL_ENV}
    options: dict[str, Any] = {"cwd": str(folder)}
    if kernel_manager is not None:
        km = kernel_manager(kernel, {**(env or {}), **step_env}, str(folder))
        if km is None:
            raise NotWarm(kernel)
        options = {"km": km}  # no `cwd`: papermill would chdir this whole process
    try:
        with _environ(step_env if kernel_manager is None else {}):
            done = papermill.execute_notebook(
                str(path),
                str(report),
                parameters=parameters,
                kernel_name=kernel,
                progress_bar=False,
                **options,
            )
    except PapermillExecutionError as exc:
        scrub_report(report)
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
    scrub_report(report)
    return StepOutcome(report, _cells_seconds(done))


def step_command(
    notebook: str | Path,
    out: TextIO,
    err: TextIO,
    kernel_manager: KernelManagers | None = None,
    env: Mapping[str, str] | None = None,
) -> int | None:
    """``nbops step NOTEBOOK`` as the CLI prints it (warm or cold): the report, then the
    step's time and its cells' share; the exit code (None: not warm, run it cold)."""
    started = time.perf_counter()
    try:
        outcome = run_step(notebook, kernel_manager, env)
    except NotWarm:
        return None
    except NbopsError as exc:
        print(f"nbops: error: {exc}", file=err)
        return exc.exit_code
    took = time.perf_counter() - started
    print(f"executed {notebook} -> {outcome.report}", file=out)
    name = step_name(Path(notebook))
    print(
        f"{TIMING_MARK} {name!r} took {took:.2f} s, its cells {outcome.cells_seconds:.2f} s",
        file=out,
    )
    return 0


def _cells_seconds(nb: Any) -> float:
    """The sum of papermill's per-cell durations in the executed notebook."""
    total = 0.0
    for cell in (nb or {}).get("cells", []):
        duration = ((cell.get("metadata") or {}).get("papermill") or {}).get("duration")
        if isinstance(duration, int | float):
            total += duration
    return total


def scrub_report(report: Path) -> bool:
    """Scrub secrets from the outputs of an executed notebook, in place; True if it changed."""
    from nbops.capture.redact import scrub_text

    try:
        nb = json.loads(report.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    changed = False

    def scrub(value: Any) -> Any:
        nonlocal changed
        if isinstance(value, str):
            clean = scrub_text(value)
            changed = changed or clean != value
            return clean
        if isinstance(value, list):
            return [scrub(v) for v in value]
        if isinstance(value, dict):
            return {k: scrub(v) for k, v in value.items()}
        return value

    for cell in nb.get("cells", []) if isinstance(nb, dict) else []:
        if isinstance(cell, dict) and isinstance(cell.get("outputs"), list):
            cell["outputs"] = scrub(cell["outputs"])
    if changed:
        report.write_text(
            json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n", "utf-8"
        )
    return changed


def pipeline_folder(notebook: Path) -> Path:
    """The nearest folder above the notebook holding ``dvc.yaml`` (else the working dir)."""
    for folder in notebook.parents:
        if (folder / layout.DVC_YAML).is_file() or (folder / layout.PARAMS).is_file():
            return folder
    return Path.cwd()


def step_name(notebook: Path) -> str:
    """``steps/02_train.ipynb`` -> ``train``."""
    match = _STEP_FILE.match(notebook.stem)
    return match.group(1) if match else notebook.stem


def step_parameters(nb: dict[str, Any], params: dict[str, Any], step: str) -> dict[str, Any]:
    """``params.yaml`` values of the names the step's ``parameters`` cell assigns."""
    names: list[str] = []
    for source in layout.tagged_code(nb, layout.TAG_PARAMETERS):
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
        _check_secret(step, name, value)
    return values


def _check_secret(step: str, name: str, value: Any) -> None:
    """A secret never reaches a step's parameters (the executed report and dvc.lock would
    carry it); promote refuses it in the notebook, this catches a hand-edited params.yaml."""
    from nbops.capture.redact import env_name, secret_path

    path = secret_path(value, name)
    if path is None:
        return
    variable = env_name(path)
    raise NotebookError(
        f"params.yaml: parameter {name!r} holds a secret; step {step!r} would get it in its "
        "report (reports/) and DVC would copy it into dvc.lock",
        fix=f"remove it from params.yaml and read it in the step from the environment "
        f'(`os.environ["{variable}"]`), setting {variable} where `nbops run` runs',
        step=step,
        param=name,
    )


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
    PapermillExecutionError (``executed``: the report, which maps execution counts to cells).
    Secrets a traceback shows (an environment value in a message) are scrubbed."""
    from nbops.capture.redact import scrub_text
    from nbops.pipeline.failure import describe

    error = describe(name, nb, exc, report, executed)
    error.message = scrub_text(error.message)
    error.args = (error.message,)
    return error


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


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m nbops.pipeline.step NOTEBOOK`` (what ``nbops step`` does)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m nbops.pipeline.step NOTEBOOK", file=sys.stderr)
        return 2
    return step_command(args[0], sys.stdout, sys.stderr) or 0


if __name__ == "__main__":
    sys.exit(main())
