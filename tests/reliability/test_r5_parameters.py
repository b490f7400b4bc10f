"""R5: parameter values reach a step's kernel unchanged, or are refused before the step runs;
parameter names can never inject code.

A value travels: the notebook's literal -> ``params.yaml`` (promote's writer) -> ``nbops step``
(``step_parameters``: only the step's names, values checked) -> papermill's translator (Python
source in the ``injected-parameters`` cell) -> the kernel executes that source. The 10,000
generated values go through every layer in-process (the injected source is executed here, as
the kernel would); one real step run through a kernel checks the same with a few nasty values.
A value that holds a secret (a ``passwd`` key, a URL with a password) is refused too (issue 15).
"""

from __future__ import annotations

import ast
import datetime
import keyword
import pickle
from pathlib import Path
from typing import Any

import nbformat
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reliability_support import same

from nbops.capture.redact import secret_path
from nbops.errors import NotebookError
from nbops.notebook.parameters import parse_parameters
from nbops.notebook.plan import Cell, Plan
from nbops.pipeline import layout
from nbops.pipeline.step import run_step, step_parameters
from nbops.promote.render import render_params
from nbops.promote.templates import environment

pytestmark = pytest.mark.reliability

PER_EXAMPLE = 50
EXAMPLES = 200  # 200 x 50 = 10,000 generated values
NAMES = [f"p{i}" for i in range(PER_EXAMPLE)]

NASTY_STRINGS = [
    '"',
    "'",
    "\\",
    '\\"',
    "'''",
    '"""',
    "\n",
    "\r\n",
    "\r",
    "\t",
    "\x00",
    "\x85",
    "\u2028",
    "\u2029",
    "\ufeff",
    "a\\\nb",
    "{x}",
    "# not a comment",
    "${HOME}",
    "$(rm -rf /)",
    "\\N",
    "null",
    "~",
    "yes",
    "1e3",
    "0x1F",
    "007",
    ".nan",
    "- item",
    "key: value",
    "é",
    "日本語",
    "🙂",
    "\U0010ffff",
    "postgresql://admin:r5-pw@db/app",  # a credential: refused, never injected
    "sk-r5abcdefghijklmnopqrstuv",
    " leading",
    "trailing ",
    "",
]
text = st.text(st.characters(codec="utf-8"), max_size=20) | st.sampled_from(NASTY_STRINGS)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**200), max_value=2**200)
    | st.floats(allow_nan=True, allow_infinity=True)
    | text
)
# What params.yaml can hold (YAML's plain types): these must arrive equal.
yaml_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=6,
)
# What papermill would turn into something else (a tuple or date becomes a string, a dict key
# becomes a string): these must be refused, naming the parameter.
odd_values = st.one_of(
    st.tuples(scalars, scalars),
    st.frozensets(st.integers(), min_size=1, max_size=3),
    st.dates(),
    st.dictionaries(st.integers() | st.booleans() | st.none(), scalars, min_size=1, max_size=2),
    st.lists(st.tuples(st.integers()), min_size=1, max_size=2),
    st.dictionaries(text, st.dates(), min_size=1, max_size=2),
)
ODD_EACH = 5  # of the 50 values of an example


def step_notebook(names: list[str], cells: list[str] = ()) -> dict[str, Any]:
    """A step notebook as promote writes it: a ``parameters`` cell assigning every name."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    params = "\n".join(f"{name} = None" for name in names)
    nb.cells = [nbformat.v4.new_code_cell(params, metadata={"tags": ["parameters"]})]
    nb.cells += [nbformat.v4.new_code_cell(source) for source in cells]
    return nb


def injected_source(nb: dict[str, Any], values: dict[str, Any]) -> str:
    """The source papermill puts in the ``injected-parameters`` cell (what the kernel runs)."""
    from papermill.parameterize import parameterize_notebook

    node = nbformat.from_dict(nb)
    node.metadata["papermill"] = {}  # papermill's execute_notebook adds it before this call
    done = parameterize_notebook(node, values, kernel_name="python3")
    [cell] = [c for c in done.cells if "injected-parameters" in c.metadata.get("tags", [])]
    return cell.source


def carriable(value: Any) -> bool:
    """A value papermill's Python translator gives back as it was (YAML's plain types)."""
    if isinstance(value, list):
        return all(carriable(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and carriable(v) for k, v in value.items())
    return value is None or isinstance(value, bool | int | float | str)


def write_params(folder: Path, values: dict[str, Any]) -> None:
    """``params.yaml`` as ``nbops promote`` writes it from the notebook's parameters."""
    plan = Plan(name="r5", notebook="r5.ipynb", parameters=values)
    text = render_params(environment(), plan, "../../r5.ipynb")
    (folder / layout.PARAMS).write_text(text, encoding="utf-8")


def test_10000_generated_values_arrive_equal_or_are_refused(tmp_path: Path) -> None:
    nb = step_notebook(NAMES)
    seen = {"carried": 0, "refused": 0, "secret": 0}

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(
        st.lists(yaml_values, min_size=PER_EXAMPLE - ODD_EACH, max_size=PER_EXAMPLE - ODD_EACH),
        st.lists(odd_values, min_size=ODD_EACH, max_size=ODD_EACH),
    )
    def round_trip(plain: list[Any], odd: list[Any]) -> None:
        params = dict(zip(NAMES, plain + odd, strict=True))
        carried = {k: v for k, v in params.items() if carriable(v)}
        for name, value in params.items():
            if name in carried:
                continue
            with pytest.raises(NotebookError, match=f"params.yaml: {name} = "):
                step_parameters(nb, {name: value}, "r5")
            seen["refused"] += 1
        for name, value in list(carried.items()):  # a secret (a "passwd" key, a URL with a
            if secret_path(value, name) is None:  # password) is refused too, never injected
                continue
            with pytest.raises(NotebookError, match=f"parameter {name!r} holds a secret"):
                step_parameters(nb, {name: value}, "r5")
            del carried[name]
            seen["secret"] += 1
        write_params(tmp_path, carried)
        back = layout.read_params(tmp_path)
        injected = step_parameters(nb, back, "r5")
        assert list(injected) == list(carried)
        kernel_ns: dict[str, Any] = {}
        exec(compile(injected_source(nb, injected), "<injected-parameters>", "exec"), kernel_ns)
        for name, value in carried.items():
            assert same(kernel_ns[name], value), (name, value, kernel_ns[name])
        seen["carried"] += len(carried)

    round_trip()
    assert seen["carried"] + seen["refused"] + seen["secret"] == EXAMPLES * PER_EXAMPLE
    assert seen["refused"] == EXAMPLES * ODD_EACH  # every odd value refused, none let through


@settings(max_examples=300, deadline=None, database=None)
@given(
    name=st.text(min_size=1, max_size=30) | st.sampled_from(["x = 1\nimport os\ny", "a; b", "a.b"])
)
def test_a_crafted_parameter_name_is_rejected_or_is_a_plain_name(name: str) -> None:
    """In the notebook: anything but ``identifier = literal`` is a NotebookError at promote."""
    cell = Cell(index=0, kind="code", source=f"{name} = 1", tags=["parameters"])
    try:
        values = parse_parameters("r5.ipynb", cell)
    except NotebookError as exc:
        assert "r5.ipynb, cell 1" in exc.message and exc.fix
        return
    for parsed in values:  # none when the line is only a comment
        assert parsed.isidentifier() and not keyword.iskeyword(parsed)
        assert ast.parse(f"{parsed} = 1").body[0].targets[0].id == parsed  # type: ignore[attr-defined]


@settings(max_examples=200, deadline=None, database=None)
@given(crafted=st.dictionaries(st.text(min_size=1, max_size=40), yaml_values, max_size=5))
def test_crafted_names_in_params_yaml_never_reach_the_kernel(crafted: dict[str, Any]) -> None:
    """A hand-edited params.yaml key is injected only if the step's parameters cell assigns
    that name; the injected source is then nothing but assignments of the step's names."""
    payload = "x = 1\n__import__('os').environ['NBOPS_R5_PWNED'] = '1'\ny"
    params = {**crafted, payload: 1, "a": 1.5, "b": "two"}
    nb = step_notebook(["a", "b"])
    injected = step_parameters(nb, params, "r5")
    assert set(injected) <= {"a", "b"} and payload not in injected
    tree = ast.parse(injected_source(nb, injected))
    targets = [t.id for stmt in tree.body for t in stmt.targets]  # type: ignore[attr-defined]
    assert all(isinstance(stmt, ast.Assign) for stmt in tree.body)
    assert targets == list(injected)


NASTY = {
    "quotes": "it's \"quoted\" \\ '''",
    "lines": "line 1\nline 2\r\n\tend",
    "unicode": "café 日本語 🙂 \u2028 \x85",
    "not_a_number": float("nan"),
    "minus_inf": float("-inf"),
    "big": 2**100 + 1,
    "nested": {"a": [1, 2.5, None, True, {"b": ["c", float("inf")]}], "": {}},
    "empty": "",
}


@pytest.mark.kernel
def test_nasty_values_arrive_equal_in_a_real_step_kernel(tmp_path: Path) -> None:
    folder = tmp_path / "pipelines" / "r5"
    (folder / "steps").mkdir(parents=True)
    write_params(folder, NASTY)
    dump = "import pickle\npickle.dump({n: globals()[n] for n in %r}, open('got.pkl', 'wb'))"
    nb = step_notebook(list(NASTY), [dump % list(NASTY)])
    nbformat.write(nbformat.from_dict(nb), folder / "steps" / "01_echo.ipynb")
    run_step(folder / "steps" / "01_echo.ipynb")
    got = pickle.loads((folder / "got.pkl").read_bytes())
    assert list(got) == list(NASTY)
    for name, value in NASTY.items():
        assert same(got[name], value), (name, value, got[name])


def test_values_papermill_would_change_are_refused_with_the_fix() -> None:
    nb = step_notebook(["when", "pair", "keys"])
    cases = {
        "when": datetime.date(2024, 1, 2),
        "pair": (1, 2),
        "keys": {1: "one"},
    }
    for name, value in cases.items():
        with pytest.raises(NotebookError) as caught:
            step_parameters(nb, {name: value}, "train")
        assert f"params.yaml: {name} = " in caught.value.message
        assert "step 'train'" in caught.value.message and "quote it" in caught.value.fix
    assert yaml.safe_load("keys: {1: one}") == {"keys": {1: "one"}}  # how such a key gets in
