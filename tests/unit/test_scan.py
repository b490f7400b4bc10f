"""The static reading of a cell: what users see recorded as params and data comes from here."""

from __future__ import annotations

from nbops.capture.scan import scan_cell


def test_top_level_literals_are_params_and_computed_values_are_not() -> None:
    scan = scan_cell(
        "n_estimators = 100\nlr: float = 0.1\nname = 'rf'\nlayers = [64, {'a': None}]\n"
        "a, b = 1, -2\nseed = n_estimators + 1\nX = load()\n"
        "if True:\n    nested = 3\n"
    )
    assert scan.literals == {
        "n_estimators": 100,
        "lr": 0.1,
        "name": "rf",
        "layers": [64, {"a": None}],
        "a": 1,
        "b": -2,
    }


def test_free_names_are_read_before_the_cell_binds_them() -> None:
    scan = scan_cell("df = df.dropna()\ny = df['target']\nX = features(y)\nz = q + 1\n")
    assert scan.free == {"df", "features", "q"}
    assert {"df", "y", "X", "z"} <= scan.stored


def test_names_used_inside_functions_count_as_reads_but_their_locals_do_not() -> None:
    scan = scan_cell("def f(a):\n    tmp = a + offset\n    return tmp\nresult = f(2)\n")
    assert "offset" in scan.free
    assert "tmp" not in scan.stored and "a" not in scan.free
    assert {"f", "result"} <= scan.stored


def test_fit_calls_name_the_estimator_and_its_training_input() -> None:
    scan = scan_cell(
        "model.fit(X_train, y_train)\npipe.fit_transform(df)\nobj.a.fit(x)\n"
        "ridge = Ridge(alpha=1).fit(X, y)\n"
    )
    assert scan.fits == {"model": ["X_train", "y_train"], "pipe": ["df"], "ridge": ["X", "y"]}


def test_assigned_calls_keep_the_dotted_callee() -> None:
    scan = scan_cell("acc = metrics.accuracy_score(y, p)\nr2 = model.score(X, y)\n")
    assert scan.assigned_calls == {"acc": "metrics.accuracy_score", "r2": "model.score"}


def test_string_literals_that_look_like_paths() -> None:
    scan = scan_cell(
        "df = pd.read_csv('data/wine.csv')\nout = 'model.joblib'\nurl = 'https://x.org/a.csv'\n"
        "msg = 'hello world'\nsep = ','\n"
    )
    assert scan.paths == ["data/wine.csv", "model.joblib"]


def test_imports_bind_their_top_level_name() -> None:
    scan = scan_cell("import numpy as np\nimport os.path\nfrom sklearn import metrics\n")
    assert {"np", "os", "metrics"} <= scan.stored


def test_a_syntax_error_is_reported_not_raised() -> None:
    scan = scan_cell("x = (1,\n")
    assert scan.syntax_error and "line" in scan.syntax_error
    assert scan.literals == {}
