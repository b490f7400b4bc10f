"""Finding the evaluation the model gate repeats, the way notebooks really score their models,
and, when it cannot be repeated, the reason (the source cell) and the tag that attaches it."""

from __future__ import annotations

import pytest

from nbops.notebook.evaluation import Analysis, analyse
from nbops.notebook.plan import Cell, Plan, Step


def plan(*cells: str | tuple[str, list[str]], metrics_cell: str = "") -> Plan:
    """One step per cell (numbered from 1, as Jupyter shows them)."""
    steps = []
    for i, cell in enumerate(cells):
        source, tags = (cell, []) if isinstance(cell, str) else cell
        steps.append(Step(name=f"s{i + 1}", cells=[Cell(i, "code", source, list(tags))]))
    result = Plan(name="p", notebook="p.ipynb", steps=steps)
    if metrics_cell:
        result.metrics_cells = [Cell(len(cells), "code", metrics_cell, ["pipeline-metrics"])]
    return result


def found(*cells: str | tuple[str, list[str]], **kw: str) -> tuple:
    analysis = analyse(plan(*cells, **kw))
    e = analysis.evaluation
    assert e is not None, (analysis.reason, analysis.fix)
    scopes = tuple(e.scope(role) for role in ("model", "X", "y"))
    return (e.metric, e.function, e.model, e.X, e.y, e.kwargs, e.post, e.greater_is_better, scopes)


def missing(*cells: str | tuple[str, list[str]]) -> Analysis:
    analysis = analyse(plan(*cells))
    assert analysis.evaluation is None
    return analysis


S1, S2 = ("s1", "s1", "s1"), ("s2", "s2", "s2")


@pytest.mark.parametrize(
    ("cells", "expected"),
    [
        (  # predictions in one cell (here: step), scored in a later one, printed
            ("preds = model.predict(X_test)", "print(accuracy_score(y_test, preds))"),
            ("accuracy", "accuracy_score", "model", "X_test", "y_test", {}, [], True),
        ),
        (
            ("acc = round(clf.score(X_test, y_test) * 100, 2)",),
            ("acc", "score", "clf", "X_test", "y_test", {}, [["mul", 100.0]], True),
        ),
        (
            ("rmse = np.sqrt(mean_squared_error(y_test, reg.predict(X_test)))",),
            ("rmse", "mean_squared_error", "reg", "X_test", "y_test", {}, [["sqrt"]], False),
        ),
        (  # an error rate: the arithmetic flips the direction
            ("err = 1 - accuracy_score(y, m.predict(X))",),
            ("err", "accuracy_score", "m", "X", "y", {}, [["rsub", 1.0]], False),
        ),
        (
            ("print(classification_report(y_test, clf.predict(X_test.values)))",),
            ("f1_macro", "f1_score", "clf", "X_test", "y_test", {"average": "macro"}, [], True),
        ),
        (
            ('AVG = "weighted"\nf1 = f1_score(y, m.predict(X), average=AVG)',),
            ("f1", "f1_score", "m", "X", "y", {"average": "weighted"}, [], True),
        ),
        (
            ("print(f'acc={accuracy_score(y_test, model.predict(X_test)):.3f}')",),
            ("accuracy", "accuracy_score", "model", "X_test", "y_test", {}, [], True),
        ),
    ],
)
def test_scores_are_found_the_way_notebooks_write_them(cells: tuple, expected: tuple) -> None:
    assert found(*cells)[:8] == expected


def test_predictions_made_in_an_earlier_step_are_loaded_from_it() -> None:
    *_, scopes = found("preds = model.predict(X_test)", "a = accuracy_score(y_test, preds)")
    assert scopes == ("s1", "s1", "s2")  # model and X where predicted, y where scored


def test_cross_validation_is_repeated_on_the_same_folds() -> None:
    cells = (
        "scores = cross_val_score(clf, X, y, cv=KFold(5, shuffle=True, random_state=0), "
        "scoring='f1_macro')\nclf.fit(X, y)",
        "cv_f1 = scores.mean()",
    )
    metric, function, model, X, y, kwargs, *_ = found(*cells)
    assert (metric, function, model, X, y) == ("cv_f1", "cross_val_score", "clf", "X", "y")
    cv = {"splitter": "KFold", "n_splits": 5, "shuffle": True, "random_state": 0}
    assert kwargs == {"cv": cv, "scoring": "f1_macro"}
    validate = "res = cross_validate(m, X, y, cv=3, scoring=['accuracy', 'f1_macro'])\nm.fit(X, y)"
    assert found(validate, "f1 = res['test_f1_macro'].mean()")[5] == {
        "cv": 3,
        "scoring": "f1_macro",
    }


def test_a_model_only_cross_validated_is_never_trained_so_no_gate() -> None:
    analysis = missing("print(cross_val_score(clf, X, y).mean())")
    assert "never fits it" in analysis.reason and "clf.fit(X, y)" in analysis.fix


LOOP = (
    "models = {'lr': LogisticRegression(), 'rf': RandomForestClassifier()}\nresults = {}\n"
    "for name, m in models.items():\n    m.fit(X_train, y_train)\n"
    "    results[name] = accuracy_score(y_test, m.predict(X_test))"
)


def test_a_loop_over_models_gates_the_one_the_notebook_picks() -> None:
    picked = found(LOOP, "best = max(results, key=results.get)\nbest_model = models[best]")
    assert picked[2] == "best_model" and picked[8] == ("s2", "s1", "s1")


def test_a_loop_without_a_pick_asks_which_model_with_a_tag_that_answers() -> None:
    analysis = missing(LOOP)
    assert analysis.reason.startswith("cell 1 (") and "in a loop" in analysis.reason
    assert "tag cell 1 `model:m`" in analysis.fix
    assert found((LOOP, ["model:m"]))[2] == "m"  # the fix, applied


def test_untraced_predictions_say_why_and_model_tag_fixes_it() -> None:
    cells = ["clf.fit(X, y)\npreds = (clf.predict_proba(X_test)[:, 1] > 0.5).astype(int)"]
    analysis = missing(*cells, "acc = accuracy_score(y_test, preds)")
    assert analysis.reason.startswith("cell 2 ('acc = accuracy_score(y_test, preds)'): `preds`")
    assert "tag cell 2 `model:clf`" in analysis.fix
    fixed = found(*cells, ("acc = accuracy_score(y_test, preds)", ["model:clf"]))
    assert fixed[2:5] == ("clf", "X_test", "y_test") and fixed[8] == ("s1", "s1", "s2")
    helper = missing("clf.fit(X, y)\npreds = helper(clf, X_test)", "a = f1_score(y_test, preds)")
    assert "tag cell 2 `model:clf`" in helper.fix


@pytest.mark.parametrize(
    ("source", "reason", "fix"),
    [
        ("x = 1", "no cell in the steps scores a model", "add such a line"),
        ("print(accuracy_score(y, preds))", "cannot tell which model made `preds`", "directly"),
        ("a = accuracy_score(df['y'], m.predict(X))", "are not one variable", "y_test = ..."),
        ("a = f1_score(y, m.predict(X), average=mode)", "`average=mode`", "pass constants"),
        ("p = m.predict(X)\nr = my_rmse(y, p)", "`my_rmse` is not a metric the gate knows", ""),
    ],
)
def test_each_score_not_understood_names_the_cell_and_the_fix(
    source: str, reason: str, fix: str
) -> None:
    analysis = missing(source)
    assert reason in analysis.reason and fix in analysis.fix


def test_several_models_gate_the_last_and_say_so_and_the_gate_tag_chooses() -> None:
    a, b = "acc_lr = lr.score(X, y)", "acc_rf = rf.score(X, y)"
    analysis = analyse(plan(a, b))
    assert analysis.evaluation is not None and analysis.evaluation.model == "rf"
    assert any("several models" in note and "`gate`" in note for note in analysis.notes)
    assert found((a, ["gate"]), b)[2] == "lr"


def test_kale_pipeline_metrics_choose_the_printed_score() -> None:
    cells = ("acc_lr = round(lr.score(X, y) * 100, 2)", "other = rf.score(X, y)")
    assert found(*cells, metrics_cell="print(acc_lr)")[2] == "lr"


def test_metric_tag_picks_a_classification_report_figure() -> None:
    source = "print(classification_report(y, clf.predict(X), zero_division=0))"
    metric, function, *_, kwargs, _post, _better, _ = found((source, ["metric:accuracy"]))
    assert (metric, function, kwargs) == ("accuracy", "accuracy_score", {"zero_division": 0})
    analysis = missing((source, ["metric:auc"]))
    assert "metric:f1_macro" in analysis.fix


def test_a_gate_tag_on_a_cell_without_a_score_says_so() -> None:
    analysis = missing(("model.fit(X, y)", ["gate"]), "a = accuracy_score(y, model.predict(X))")
    assert "tagged `gate`, but nbops found no score" in analysis.reason


@pytest.mark.parametrize(
    ("cells", "fixed"),
    [  # each variant's fix, applied as the printed text says
        (  # "pass constants in cell 1 (literals, or names assigned a literal earlier)"
            ["a = f1_score(y, m.predict(X), average=mode)"],
            ["mode = 'macro'\na = f1_score(y, m.predict(X), average=mode)"],
        ),
        (  # "assign the labels to a variable first in cell 1 (`y_test = ...`)"
            ["a = accuracy_score(df['y'], m.predict(X))"],
            ["y_test = df['y']\na = accuracy_score(y_test, m.predict(X))"],
        ),
        (  # "also compute a score the gate knows there"
            ["p = m.predict(X)\nr = my_rmse(y, p)"],
            ["p = m.predict(X)\nr = my_rmse(y, p)\nmae = mean_absolute_error(y, p)"],
        ),
        (  # "fit it after cross-validating (`clf.fit(X, y)`)"
            ["print(cross_val_score(clf, X, y).mean())"],
            ["print(cross_val_score(clf, X, y).mean())\nclf.fit(X, y)"],
        ),
        (  # "score the model's predictions directly in cell 1 (e.g. `... model.predict(...)`)"
            ["print(accuracy_score(y, preds))"],
            ["print(accuracy_score(y, model.predict(X)))"],
        ),
        (  # "tag the cell that scores the model `gate` instead"
            [("m.fit(X, y)", ["gate"]), "a = accuracy_score(y, m.predict(X))"],
            ["m.fit(X, y)", ("a = accuracy_score(y, m.predict(X))", ["gate"])],
        ),
    ],
)
def test_the_printed_fix_of_each_variant_attaches_the_gate(cells: list, fixed: list) -> None:
    missing(*cells)
    assert found(*fixed)
