"""The model gate's pieces: finding the notebook's evaluation, the config, the decision."""

from __future__ import annotations

import math

import pytest

from nbops.errors import ConfigError
from nbops.notebook.evaluation import find_evaluation
from nbops.notebook.plan import Artifact, Cell, Plan, Step
from nbops.validate.gate import EvaluateSpec, GateConfig, decide, score


def _plan(*sources: str) -> Plan:
    steps = [
        Step(name=f"s{i}", cells=[Cell(index=i, kind="code", source=src)])
        for i, src in enumerate(sources)
    ]
    return Plan(name="p", notebook="p.ipynb", steps=steps)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (
            "accuracy = accuracy_score(y_test, model.predict(X_test))",
            ("accuracy", "accuracy_score", "model", "X_test", "y_test", "predict"),
        ),
        (
            "%%track --params a\npred = clf.predict(Xh)\nrmse = root_mean_squared_error(yh, pred)",
            ("rmse", "root_mean_squared_error", "clf", "Xh", "yh", "predict"),
        ),
        (
            "auc = metrics.roc_auc_score(y, m.predict_proba(X)[:, 1])",
            ("auc", "roc_auc_score", "m", "X", "y", "predict_proba[:, 1]"),
        ),
        (
            "score = model.score(X_test, y_test)",
            ("score", "score", "model", "X_test", "y_test", "predict"),
        ),
    ],
)
def test_the_notebooks_evaluation_is_found(source: str, expected: tuple[str, ...]) -> None:
    found = find_evaluation(_plan(source))
    assert found is not None
    got = (found.metric, found.function, found.model, found.X, found.y, found.method)
    assert got == expected


def test_literal_keyword_arguments_are_kept_and_computed_ones_refused() -> None:
    found = find_evaluation(_plan("f1 = f1_score(y, model.predict(X), average='macro')"))
    assert found is not None and found.kwargs == {"average": "macro"}
    assert find_evaluation(_plan("f1 = f1_score(y, model.predict(X), average=mode)")) is None


def test_no_evaluation_means_no_gate_and_the_last_one_wins() -> None:
    assert find_evaluation(_plan("x = 1", "model.fit(X, y)")) is None
    found = find_evaluation(
        _plan("a = accuracy_score(y1, m.predict(X1))", "b = accuracy_score(y2, m.predict(X2))")
    )
    assert found is not None and (found.metric, found.step, found.X) == ("b", "s1", "X2")


def test_lower_is_better_metrics_are_known() -> None:
    found = find_evaluation(_plan("mae = mean_absolute_error(y, m.predict(X))"))
    assert found is not None and found.greater_is_better is False


def _config(**gate: object) -> GateConfig:
    evaluate = {
        "function": "accuracy_score",
        "model": "train/model",
        "X": "train/X",
        "y": "train/y",
    }
    params = {"gate": {"model_name": "wine", "metric": "accuracy", "evaluate": evaluate, **gate}}
    return GateConfig.from_params(params)


def test_gate_config_reads_params_and_names_a_bad_key() -> None:
    config = _config(min_delta=0.01)
    assert config.min_delta == 0.01 and config.auto_promote is True
    assert config.evaluate.artifact("model") == ("train", "model")
    with pytest.raises(ConfigError, match=r"gate\.min_delta.*expected a number") as info:
        _config(min_delta="small")
    assert "params.yaml" in str(info.value)
    with pytest.raises(ConfigError, match="no `gate:` section"):
        GateConfig.from_params({})


def test_the_candidate_passes_within_min_delta_and_fails_beyond_it() -> None:
    config = _config(min_delta=0.02)
    assert decide(config, 0.90, 0.91).passed
    failed = decide(config, 0.85, 0.91)
    assert not failed.passed and "champion 0.91" in failed.reasons[0]
    assert decide(config, 0.5, None).passed  # the first model has nothing to beat


def test_lower_is_better_and_min_value_and_nan() -> None:
    config = _config(greater_is_better=False, min_value=10.0)
    assert decide(config, 9.0, 9.5).passed
    assert not decide(config, 11.0, None).passed  # above min_value for an error metric
    assert not decide(config, 9.9, 9.0).passed
    assert not decide(_config(), math.nan, 0.5).passed


def test_score_repeats_the_notebooks_metric() -> None:
    from sklearn.datasets import load_iris
    from sklearn.tree import DecisionTreeClassifier

    X, y = load_iris(return_X_y=True)
    model = DecisionTreeClassifier(random_state=0).fit(X, y)
    spec = EvaluateSpec("accuracy_score", "s/m", "s/X", "s/y")
    assert score(spec, model, X, y) == 1.0
    spec = EvaluateSpec("f1_score", "s/m", "s/X", "s/y", kwargs={"average": "macro"})
    assert score(spec, model, X, y) == 1.0
    assert score(EvaluateSpec("score", "s/m", "s/X", "s/y"), model, X, y) == 1.0


def test_inputs_from_an_earlier_step_name_their_producer() -> None:
    from nbops.notebook.evaluation import producer

    plan = _plan("acc = accuracy_score(y, m.predict(X))")
    step = plan.steps[0]
    step.inputs = [Artifact("m", "train")]
    assert producer(plan, step, "m") == "train" and producer(plan, step, "X") == "s0"


def test_score_repeats_the_arithmetic_and_cross_validation() -> None:
    from sklearn.datasets import load_iris
    from sklearn.tree import DecisionTreeClassifier

    X, y = load_iris(return_X_y=True)
    model = DecisionTreeClassifier(random_state=0).fit(X, y)
    percent = EvaluateSpec("score", "s/m", "s/X", "s/y", post=[["mul", 100.0]])
    assert score(percent, model, X, y) == 100.0
    error = EvaluateSpec("accuracy_score", "s/m", "s/X", "s/y", post=[["rsub", 1.0]])
    assert score(error, model, X, y) == 0.0
    folds = {"splitter": "StratifiedKFold", "n_splits": 3, "shuffle": True, "random_state": 0}
    cv = EvaluateSpec("cross_val_score", "s/m", "s/X", "s/y", kwargs={"cv": folds})
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    expected = cross_val_score(model, X, y, cv=StratifiedKFold(3, shuffle=True, random_state=0))
    assert score(cv, model, X, y) == pytest.approx(expected.mean())


def test_gate_config_refuses_unknown_arithmetic_and_splitters() -> None:
    with pytest.raises(ConfigError, match=r"gate\.evaluate\.post"):
        _config(evaluate={**_config().evaluate.__dict__, "post": [["exp"]]})
    bad = EvaluateSpec("cross_val_score", "s/m", "s/X", "s/y", kwargs={"cv": {"splitter": "os"}})
    with pytest.raises(ConfigError, match="splitter"):
        score(bad, None, None, None)
