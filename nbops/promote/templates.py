"""The Jinja2 templates promote fills, read from the ``nbops.templates`` package.

The templates live in the repo-root ``templates/`` folder (reviewable as the files they become)
and install as ``nbops.templates`` (``[tool.setuptools]`` in pyproject.toml), so an installed
nbops reads them with :mod:`importlib.resources`. A source checkout whose editable install
predates that mapping has no ``nbops.templates`` module; it reads the repo-root folder instead.
jinja2 is imported when a template is rendered, not when nbops is imported.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

    import jinja2

PACKAGE = "nbops.templates"


def templates_root() -> Traversable:
    """The folder holding the templates: the installed package, else the checkout's folder."""
    try:
        return resources.files(PACKAGE)
    except ModuleNotFoundError:
        checkout = Path(__file__).resolve().parents[2] / "templates"
        if checkout.is_dir():
            return checkout
        raise


def template_source(name: str) -> str:
    """The text of template ``name`` (e.g. ``"dvc.yaml.j2"``)."""
    return templates_root().joinpath(name).read_text(encoding="utf-8")


def environment() -> jinja2.Environment:
    """A fresh environment: strict about undefined names, no HTML escaping (we emit code)."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(template_source),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["yaml"] = yaml_scalar
    env.filters["py"] = repr
    env.filters["json"] = json.dumps
    env.filters["mermaid"] = mermaid_label
    env.filters["code"] = inline_code
    return env


def render(env: jinja2.Environment, template: str, /, **context: Any) -> str:
    return env.get_template(template).render(**context)


def yaml_scalar(value: str) -> str:
    """``value`` as a YAML scalar, quoted only when YAML would misread it (``yes``, ``a: b``)."""
    import yaml

    text = yaml.safe_dump(value, default_flow_style=True, width=10_000, allow_unicode=True)
    return text.removesuffix("\n").removesuffix("\n...")


def mermaid_label(value: str) -> str:
    """Text safe inside a quoted Mermaid label (quotes become the ``#quot;`` entity)."""
    return value.replace('"', "#quot;")


def inline_code(value: str) -> str:
    """``value`` as Markdown inline code, fenced with more backticks than it contains."""
    longest = 0
    current = 0
    for char in value:
        current = current + 1 if char == "`" else 0
        longest = max(longest, current)
    fence = "`" * (longest + 1)
    pad = " " if value.startswith("`") or value.endswith("`") else ""
    return f"{fence}{pad}{value}{pad}{fence}"
