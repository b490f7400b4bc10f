"""Promote refuses a notebook that would put a secret into the pipeline folder.

Everything promote generates is meant to be committed and shared: ``params.yaml`` (and
``dvc.lock``, which copies the declared params), the README's parameters table, the step
notebooks (the parameters cell and every step/setup cell verbatim), the Airflow DAG built from
them, and the executed notebooks in ``reports/`` when the pipeline runs. Redacting there would
break the pipeline (the step would run with ``***redacted***``), so a secret is refused with the
fix: read it from the environment in the step. The rules are the redaction's
(:mod:`nbops.capture.code_secrets`): a parameter with a secret-looking name (``api_token``, a
nested ``{"password": ...}``) holding a value, any value that looks like a credential (URL
credentials, known key prefixes), a literal the code binds to a secret name. Messages show the
line with the secret itself replaced, so the refusal does not print it either.
"""

from __future__ import annotations

import re

from nbops.capture.code_secrets import NOT_SECRET_PRAGMA, find_secrets, value_findings
from nbops.capture.redact import env_name, redact_code, secret_path
from nbops.capture.vocab import is_secret_name
from nbops.errors import NotebookError
from nbops.notebook.plan import Cell, Plan, cell_error

_LINES = re.compile(r"\r\n|\r|\n")
_QUOTED_NAME = re.compile(r"'([^']+)'")


def check_secrets(plan: Plan) -> None:
    """Raise :class:`NotebookError` for the first secret the pipeline's files would hold."""
    if plan.parameters_cell is not None:
        for name, value in plan.parameters.items():
            where = secret_path(value, name)
            if where is not None:
                raise _parameter_error(plan, plan.parameters_cell, name, where)
    for cell in [*plan.setup, *(c for step in plan.steps for c in step.cells)]:
        _check_cell(plan, cell)


def check_secret_artifacts(plan: Plan) -> None:
    """A secret-named variable one step makes and a later step reads would be saved to
    ``artifacts/`` and DVC's cache (and pushed to its remote): refused, naming both steps."""
    for step in plan.steps:
        for artifact in step.inputs:
            if not is_secret_name(artifact.name):
                continue
            variable = env_name([artifact.name])
            raise NotebookError(
                f"{plan.notebook}: `{artifact.name}` is made in step {artifact.producer!r} and "
                f"read in step {step.name!r}; it would be saved between them in artifacts/ and "
                "DVC's cache like any variable, and it looks like a secret",
                fix=f'read it again in step {step.name!r} (`{artifact.name} = os.environ["'
                f'{variable}"]`), or rename it if it is not a secret',
                path=plan.notebook,
                step=step.name,
                name=artifact.name,
            )


def _parameter_error(plan: Plan, cell: Cell, name: str, path: list[str]) -> NotebookError:
    variable = env_name(path)
    target = name + "".join(f"[{p!r}]" for p in path[1:])
    where = "" if len(path) == 1 else f" ({target})"
    problem = (
        f"parameter {name!r}{where} holds a secret; params.yaml, the README, the step notebooks "
        "and their reports would carry it into git"
    )
    fix = (
        f"remove it from the parameters cell and read it from the environment in the step that "
        f'uses it: `{target} = os.environ["{variable}"]` (with `import os`), and set {variable} '
        "where `nbops run` runs; if it is not a secret, rename the parameter"
    )
    return cell_error(plan.notebook, cell, problem, fix, param=name, variable=variable)


def _check_cell(plan: Plan, cell: Cell) -> None:
    # markdown and raw cells are copied too: only credentials by their look
    code = cell.kind == "code"
    found = find_secrets(cell.source) if code else list(value_findings(cell.source))
    found = [f for f in found if not f.number]  # `token_budget = 100`: not a credential
    if not found:
        return
    first = found[0]
    lines = _LINES.split(cell.source)
    text = lines[first.line - 1] if 0 < first.line <= len(lines) else ""
    shown = redact_code(text).strip()[:120]
    problem = (
        f"line {first.line} holds a secret ({first.why}): `{shown}`; the step notebooks would "
        "carry it into git"
    )
    named = _QUOTED_NAME.search(first.why)
    variable = env_name([named.group(1)]) if named else "SECRET"
    fix = (
        f'read it from the environment instead: put `os.environ["{variable}"]` where the literal '
        f"is (with `import os`), and set {variable} where `nbops run` runs"
    )
    if cell.kind == "code" and first.literal:
        fix += f"; if it is not a secret, end the line with `# {NOT_SECRET_PRAGMA}`"
    raise cell_error(plan.notebook, cell, problem, fix, line=first.line, variable=variable)
