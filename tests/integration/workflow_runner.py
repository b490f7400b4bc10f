"""Run a GitHub Actions workflow's job locally, step by step, as the runner would.

Each ``run:`` step runs as ``bash --noprofile --norc -eo pipefail`` in the checkout with the
job's and the step's ``env:`` (expressions evaluated against the contexts given), its ``if:``
evaluated, and ``GITHUB_ENV`` carried to the next steps. ``uses:`` steps are the runner's
business and are skipped (the caller has checked out and set up Python), and so are steps the
caller names (installing what the test environment already has). Only the expression forms the
nbops template uses are understood; any other raises, so a template change is noticed here.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

_EXPR = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
_TOKEN = re.compile(r"\s*(\|\||&&|==|!=|\(|\)|'[^']*'|[A-Za-z_][\w.\-]*\(\)|[A-Za-z_][\w.\-]*)")


@dataclass
class StepResult:
    name: str
    ran: bool
    code: int = 0
    output: str = ""


@dataclass
class JobRun:
    steps: list[StepResult] = field(default_factory=list)

    def step(self, prefix: str) -> StepResult:
        return next(s for s in self.steps if s.name.startswith(prefix))

    @property
    def output(self) -> str:
        return "\n".join(f"== {s.name}\n{s.output}" for s in self.steps if s.ran)


def run_job(
    workflow: Path,
    job: str,
    workspace: Path,
    contexts: dict[str, Any],
    skip: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
) -> JobRun:
    spec = yaml.safe_load(workflow.read_text())["jobs"][job]
    temp = workspace.parent / f"{workspace.name}-runner"
    temp.mkdir(exist_ok=True)
    github_env = temp / "github_env"
    github_env.write_text("")
    base = {**os.environ, **(env or {})}
    base.update(GITHUB_ENV=str(github_env), RUNNER_TEMP=str(temp), GITHUB_WORKSPACE=str(workspace))
    github = contexts["github"]
    base.update(GITHUB_REF_NAME=github["ref_name"], GITHUB_EVENT_NAME=github["event_name"])
    base.update({k: _render(str(v), contexts) for k, v in (spec.get("env") or {}).items()})
    result = JobRun()
    for step in spec["steps"]:
        name = step.get("name", step.get("uses", ""))
        wanted = "run" in step and not name.startswith(skip)
        if wanted and "if" in step:
            wanted = bool(evaluate(str(step["if"]), contexts))
        if not wanted:
            result.steps.append(StepResult(name, ran=False))
            continue
        step_env = {**base, **_carried(github_env)}
        step_env.update({k: _render(str(v), contexts) for k, v in (step.get("env") or {}).items()})
        done = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
            cwd=workspace,
            env=step_env,
            capture_output=True,
            text=True,
            check=False,
        )
        result.steps.append(StepResult(name, True, done.returncode, done.stdout + done.stderr))
        if done.returncode != 0:
            raise AssertionError(f"step {name!r} failed ({done.returncode}):\n{result.output}")
    return result


def _carried(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {key: value for key, value in pairs}


def _render(text: str, contexts: dict[str, Any]) -> str:
    return _EXPR.sub(lambda m: _text(evaluate(m.group(1), contexts)), text)


def _text(value: Any) -> str:
    if value is None or value is False:
        return "" if value is None else "false"
    return "true" if value is True else str(value)


def evaluate(expression: str, contexts: dict[str, Any]) -> Any:
    """GitHub's ``||``, ``&&``, ``==``, ``!=``, parentheses, strings, context paths and
    ``always()``/``success()``, with GitHub's value semantics (``||`` gives the first truthy
    operand, missing properties are null)."""
    tokens = [t for t in _TOKEN.findall(expression.strip())]
    if "".join(tokens).replace(" ", "") != expression.replace(" ", ""):
        raise ValueError(f"expression not understood: {expression!r}")
    value, rest = _or(tokens, contexts)
    if rest:
        raise ValueError(f"expression not understood: {expression!r}")
    return value


def _or(tokens: list[str], ctx: dict[str, Any]) -> tuple[Any, list[str]]:
    value, tokens = _and(tokens, ctx)
    while tokens[:1] == ["||"]:
        right, tokens = _and(tokens[1:], ctx)
        value = value or right
    return value, tokens


def _and(tokens: list[str], ctx: dict[str, Any]) -> tuple[Any, list[str]]:
    value, tokens = _compare(tokens, ctx)
    while tokens[:1] == ["&&"]:
        right, tokens = _compare(tokens[1:], ctx)
        value = value and right
    return value, tokens


def _compare(tokens: list[str], ctx: dict[str, Any]) -> tuple[Any, list[str]]:
    value, tokens = _atom(tokens, ctx)
    if tokens[:1] in (["=="], ["!="]):
        right, rest = _atom(tokens[1:], ctx)
        same = value == right
        return (same if tokens[0] == "==" else not same), rest
    return value, tokens


def _atom(tokens: list[str], ctx: dict[str, Any]) -> tuple[Any, list[str]]:
    token, rest = tokens[0], tokens[1:]
    if token == "(":
        value, rest = _or(rest, ctx)
        return value, rest[1:]
    if token.startswith("'"):
        return token[1:-1], rest
    if token in ("always()", "success()"):
        return True, rest
    if token in ("true", "false"):
        return token == "true", rest
    value: Any = ctx
    for part in token.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value, rest
