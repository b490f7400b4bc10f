"""The cache key (issue 20): what it covers, what changes it, and what it refuses to vouch for.

Keys are computed the way ``%%track --cache`` computes them: over a namespace holding real
values (frames, arrays, a fitted model, functions defined by exec'd "cells").
"""

from __future__ import annotations

import ast
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from nbops.cache.files import code_files
from nbops.cache.hazards import CLOCK, IPYTHON, NETWORK, RANDOM, SEEDS, STATE, scan_code
from nbops.cache.key import OUTSIDE, compute_key
from nbops.hashing.identity import Identities, code_identity


def cell(ns: dict[str, Any], code: str) -> None:
    """Run ``code`` as a notebook cell would: its functions belong to ``__main__``."""
    ns.setdefault("__name__", "__main__")
    exec(compile(code, "<cell>", "exec"), ns)


@pytest.fixture
def ns(project: Path) -> dict[str, Any]:
    (project / "data.csv").write_text("a,b\n1,2\n")
    space: dict[str, Any] = {}
    cell(
        space,
        "import numpy as np, pandas as pd\n"
        "frame = pd.DataFrame({'x': np.arange(100.0), 'y': np.arange(100) % 2})\n"
        "SCALE = 2\n"
        "def scale(v):\n    return v * SCALE\n"
        "def features(df):\n    return scale(df[['x']])\n",
    )
    return space


TRAIN = "X = features(frame)\nraw = pd.read_csv('data.csv')\nn = len(X)\n"


def key(ns: dict[str, Any], code: str = TRAIN, root: Path | None = None) -> Any:
    return compute_key(code, ns, root=root or Path.cwd())


def test_the_key_covers_inputs_functions_they_call_files_and_packages(
    ns: dict[str, Any], project: Path
) -> None:
    first = key(ns)
    assert first.digest and not first.problems and not first.hazards
    assert set(first.inputs) >= {"frame", "features", "scale", "SCALE", "pd"}
    assert set(first.files) == {"data.csv"} and first.files["data.csv"].startswith("md5:")
    assert {"numpy", "pandas"} <= set(first.packages)  # the frame's library, and its own
    assert key(ns).digest == first.digest  # deterministic

    ns["frame"].iloc[-1, 0] = -1.0  # one value of one input
    assert key(ns).digest != first.digest
    ns["frame"].iloc[-1, 0] = 99.0
    assert key(ns).digest == first.digest

    cell(ns, "SCALE = 3")  # a global read by a function the cell's function calls
    assert key(ns).digest != first.digest
    cell(ns, "SCALE = 2")
    assert key(ns).digest == first.digest
    cell(ns, "def scale(v):\n    return v * SCALE + 0")  # the code of a function it reaches
    assert key(ns).digest != first.digest
    cell(ns, "def scale(v):\n    # same code, a comment\n    return v * SCALE")
    assert key(ns).digest == first.digest, "comments and line numbers are not code"

    (project / "data.csv").write_text("a,b\n1,3\n")  # a file it reads
    assert key(ns).digest != first.digest
    (project / "data.csv").write_text("a,b\n1,2\n")
    assert key(ns, TRAIN + "# a comment\n").digest == first.digest
    assert key(ns, TRAIN + "m = n\n").digest != first.digest  # the code


def test_a_package_version_is_part_of_the_key(
    ns: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from nbops.capture import context

    first = key(ns)
    real = context.package_versions
    bumped = lambda modules: {k: v + ".post1" for k, v in real(modules).items()}  # noqa: E731
    monkeypatch.setattr(context, "package_versions", bumped)
    assert key(ns).digest != first.digest


def test_identities_are_content_not_object_identity() -> None:
    import pickle

    X = np.random.default_rng(0).normal(size=(200, 3))
    y = (X[:, 0] > 0).astype(int)
    model = LogisticRegression().fit(X, y)
    same = [model, pickle.loads(pickle.dumps(model)), LogisticRegression().fit(X, y)]
    assert len({Identities({"m": m}).of_name("m") for m in same}) == 1
    other = LogisticRegression(C=0.5).fit(X, y)
    assert Identities({"m": other}).of_name("m") != Identities({"m": model}).of_name("m")

    first: dict[str, Any] = {}
    second: dict[str, Any] = {}
    cell(first, "\n\ndef f(a, b=2):\n    return [a * b for _ in range(3)]\n")
    cell(second, "def f(a, b=2):  # moved, commented\n    return [a * b for _ in range(3)]\n")
    assert code_identity(first["f"].__code__) == code_identity(second["f"].__code__)
    cell(second, "def f(a, b=3):\n    return [a * b for _ in range(3)]\n")
    assert Identities(first).of_name("f") != Identities(second).of_name("f")  # a default


def test_values_without_an_identity_make_the_cell_uncacheable(ns: dict[str, Any]) -> None:
    import threading

    ns["lock"] = threading.Lock()
    result = key(ns, "with lock:\n    n = 1\n")
    assert result.digest is None
    assert result.problems == [
        "lock: a lock that cannot be pickled (TypeError: cannot pickle '_thread.lock' object)"
    ]


HAZARDS = {
    "np.random.rand(3)": RANDOM,
    "rand(2)": RANDOM,
    "random.random()": RANDOM,
    "np.random.seed(1)": SEEDS,
    "train_test_split(frame)": f"without random_state {RANDOM}",
    "frame.sample(5)": f"without random_state {RANDOM}",
    "np.random.default_rng()": "makes a generator without a seed (a new random stream on "
    "every run)",
    "time.perf_counter()": CLOCK,
    "datetime.now()": CLOCK,
    "pd.Timestamp.now()": CLOCK,
    "uuid.uuid4()": RANDOM,
    "requests.get(u)": NETWORK,
    "pd.read_csv('https://example.org/x.csv')": NETWORK,
    "pd.set_option('display.width', 10)": STATE,
    "os.chdir('..')": STATE,
    "get_ipython().system('ls')": IPYTHON,
}
SAFE = [
    "np.random.default_rng(0).normal(size=3)",
    "frame.sample(5, random_state=0)",
    "train_test_split(frame, random_state=0)",
    "np.mean(frame)",
    "time.sleep(0)",
    "pd.DataFrame({'a': [1]})",
]


def test_hazards_are_named_with_line_call_and_reason() -> None:
    import datetime
    import random
    import time
    import uuid

    import requests
    from sklearn.model_selection import train_test_split

    space = {
        "np": np,
        "pd": pd,
        "random": random,
        "time": time,
        "uuid": uuid,
        "os": os,
        "requests": requests,
        "datetime": datetime.datetime,
        "rand": np.random.rand,
        "train_test_split": train_test_split,
        "frame": pd.DataFrame({"a": [1, 2]}),
    }
    for code, reason in HAZARDS.items():
        found = scan_code(ast.parse(code), code, space)
        assert [(h.where, h.reason) for h in found][:1] == [("line 1", reason)], code
        assert found[0].call in code, str(found[0])  # the call (or URL) as written
    for code in SAFE:
        assert scan_code(ast.parse(code), code, space) == [], code


def test_a_function_defined_earlier_carries_its_hazards_into_the_cell(ns: dict[str, Any]) -> None:
    import linecache

    source = "import time\ndef stamp(df):\n    return df.assign(t=time.time())\n"
    linecache.cache["<helpers>"] = (len(source), None, source.splitlines(True), "<helpers>")
    exec(compile(source, "<helpers>", "exec"), ns)
    result = key(ns, "out = stamp(frame)\n")
    assert [str(h) for h in result.hazards] == ["stamp() line 2: time.time() reads the clock"]


def test_files_are_folded_from_the_namespace_and_the_cell(project: Path) -> None:
    code = (
        "path = DATA + '/b.parquet'\n"
        "a = pd.read_csv(f'{DATA}/a.csv')\n"
        "b = pd.read_parquet(path)\n"
        "a.to_csv(OUT / 'a.csv')\n"
        "joblib.dump(model, 'model.joblib')\n"
        "with open('log.txt', 'w') as fh:\n    fh.write('x')\n"
        "c = pd.read_csv(pick())\n"
    )
    found = code_files(ast.parse(code), code, {"DATA": "data", "OUT": Path("out")})
    assert sorted(found.reads) == ["data/a.csv", "data/b.parquet"]
    assert sorted(found.writes) == ["log.txt", "model.joblib", "out/a.csv"]
    assert [str(h) for h in found.unnamed] == [
        "line 8: pd.read_csv(pick()) reads a file nbops cannot name"
    ]


def test_files_outside_the_project_are_hazards(project: Path, tmp_path_factory: Any) -> None:
    outside = tmp_path_factory.mktemp("elsewhere") / "x.csv"
    outside.write_text("a\n1\n")
    (project / "link.csv").symlink_to(outside)
    result = compute_key(
        f"a = pd.read_csv({str(outside)!r})\nb = pd.read_csv('link.csv')\n",
        {"pd": pd},
        root=project,
    )
    assert [h.reason for h in result.hazards] == [OUTSIDE, OUTSIDE]
    assert result.files == {}


def test_the_cache_page_lists_every_hazard_of_the_code() -> None:
    from nbops.cache.hazards import HAZARDS

    page = (Path(__file__).resolve().parents[2] / "docs" / "cache.md").read_text()
    for pattern, reason in HAZARDS:
        if pattern.startswith(("numpy.random.", "random.")) and reason == RANDOM:
            continue  # the draws: listed as `numpy.random.<draw>`, `random.<draw>`
        assert f"`{pattern}`" in page, pattern


def test_a_module_the_cell_imports_itself_is_resolved_too() -> None:
    code = (
        "import numpy as np\nfrom datetime import datetime\n"
        "noise = np.random.rand(3)\nnow = datetime.now()"
    )
    found = [str(h) for h in scan_code(ast.parse(code), code, {})]
    assert found == [
        "line 3: np.random.rand(3) reads the global random state",
        "line 4: datetime.now() reads the clock",
    ]
