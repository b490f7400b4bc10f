"""The model gate's rules: its configuration (``params.yaml`` ``gate:``), scoring, the decision.

The decision is a tolerance, not a demand for improvement: the candidate passes when it is at
least as good as the champion within ``min_delta`` (and, if set, better than ``min_value``).
Retraining on new data usually gives a model about as good as the old one, and a pipeline that
refused it would never take in new data. MLflow's ``MetricThreshold.min_absolute_change``
demands an improvement, so it is not used; a negative ``min_delta`` demands one here.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from nbops.errors import ConfigError
from nbops.notebook.scoring import CROSS_VAL, FUNCTIONS, METHODS, POST_OPS, SCORE, SPLITTERS

PARAMS_KEY = "gate"
_WHERE = "params.yaml"


@dataclass(frozen=True)
class EvaluateSpec:
    """How the notebook evaluated its model; artifacts are ``<step>/<variable>``."""

    function: str
    model: str
    X: str
    y: str
    method: str = "predict"
    kwargs: dict[str, Any] = field(default_factory=dict)
    post: list[list[Any]] = field(default_factory=list)  # arithmetic the notebook applies

    def artifact(self, role: str) -> tuple[str, str]:
        """(producing step, variable) of ``role`` in {"model", "X", "y"}."""
        step, _, var = str(getattr(self, role)).rpartition("/")
        return step, var


@dataclass(frozen=True)
class GateConfig:
    model_name: str
    metric: str
    evaluate: EvaluateSpec
    greater_is_better: bool = True
    min_delta: float = 0.0
    min_value: float | None = None
    auto_promote: bool = True

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> GateConfig:
        raw = params.get(PARAMS_KEY)
        if not isinstance(raw, dict):
            raise ConfigError(
                f"{_WHERE} has no `{PARAMS_KEY}:` section: the model gate has nothing to check",
                fix="promote the notebook again (`nbops promote NOTEBOOK`) to regenerate it",
                key=PARAMS_KEY,
            )
        spec = raw.get("evaluate")
        if not isinstance(spec, dict):
            raise _bad("evaluate", spec, "a mapping with function, model, X, y")
        try:
            evaluate = EvaluateSpec(**spec)
        except TypeError as exc:
            raise _bad("evaluate", spec, f"function, model, X, y, method, kwargs ({exc})") from exc
        if evaluate.function not in FUNCTIONS:
            raise _bad("evaluate.function", evaluate.function, f"one of {', '.join(FUNCTIONS)}")
        if evaluate.method not in METHODS:
            raise _bad("evaluate.method", evaluate.method, f"one of {', '.join(METHODS)}")
        if not isinstance(evaluate.kwargs, dict):
            raise _bad("evaluate.kwargs", evaluate.kwargs, "a mapping of keyword arguments")
        _check_post(evaluate.post)
        return cls(
            model_name=_text(raw, "model_name"),
            metric=_text(raw, "metric"),
            evaluate=evaluate,
            greater_is_better=_flag(raw, "greater_is_better", True),
            min_delta=_number(raw, "min_delta", 0.0),
            min_value=_number(raw, "min_value", None),
            auto_promote=_flag(raw, "auto_promote", True),
        )

    def as_params(self) -> dict[str, Any]:
        """Flat ``gate.*`` params for the run record."""
        flat = {k: v for k, v in asdict(self).items() if k != "evaluate"}
        flat.update({f"evaluate.{k}": v for k, v in asdict(self.evaluate).items()})
        return {f"gate.{k}": v for k, v in flat.items()}


@dataclass
class Decision:
    passed: bool
    reasons: list[str]


def score(spec: EvaluateSpec, model: Any, X: Any, y: Any) -> float:
    """The notebook's metric of ``model`` on (X, y), computed the way the notebook did
    (including the arithmetic around it, ``spec.post``)."""
    return _post(_raw_score(spec, model, X, y), spec.post)


def _raw_score(spec: EvaluateSpec, model: Any, X: Any, y: Any) -> float:
    if spec.function == SCORE:
        return float(model.score(X, y))
    if spec.function == CROSS_VAL:
        from sklearn.model_selection import cross_val_score

        kwargs = dict(spec.kwargs)
        if isinstance(kwargs.get("cv"), dict):
            kwargs["cv"] = _splitter(kwargs["cv"])
        return float(cross_val_score(model, X, y, **kwargs).mean())
    import sklearn.metrics

    if spec.method == "predict_proba[:, 1]":
        predicted = model.predict_proba(X)[:, 1]
    else:
        predicted = getattr(model, spec.method)(X)
    return float(getattr(sklearn.metrics, spec.function)(y, predicted, **spec.kwargs))


def _splitter(spec: dict[str, Any]) -> Any:
    """``{splitter: KFold, n_splits: 5, shuffle: true}`` -> the scikit-learn splitter."""
    import sklearn.model_selection

    name = spec.get("splitter")
    if name not in SPLITTERS:
        raise _bad("evaluate.kwargs.cv.splitter", name, f"one of {', '.join(sorted(SPLITTERS))}")
    args = {k: v for k, v in spec.items() if k != "splitter"}
    return getattr(sklearn.model_selection, str(name))(**args)


def _post(value: float, post: list[list[Any]]) -> float:
    """Apply the notebook's arithmetic (``* 100``, ``1 - x``, ``sqrt``) in order."""
    for op, *args in post:
        value = _POST[op](value, float(args[0]) if args else 0.0)
    return value


_POST = {
    "mul": lambda v, c: v * c,
    "div": lambda v, c: v / c,
    "add": lambda v, c: v + c,
    "rsub": lambda v, c: c - v,
    "neg": lambda v, c: -v,
    "sqrt": lambda v, c: math.sqrt(v) if v >= 0 else math.nan,
    "pow": lambda v, c: v**c if v >= 0 else math.nan,
}


def _check_post(post: Any) -> None:
    expected = f"a list of [operation, number] with operations {', '.join(POST_OPS)}"
    if not isinstance(post, list):
        raise _bad("evaluate.post", post, expected)
    for item in post:
        ok = isinstance(item, list) and item and item[0] in POST_OPS
        ok = ok and len(item) == 1 + POST_OPS[item[0]]
        ok = ok and all(isinstance(a, int | float) and not isinstance(a, bool) for a in item[1:])
        if not ok:
            raise _bad("evaluate.post", post, expected)


def decide(config: GateConfig, candidate: float, champion: float | None) -> Decision:
    """Pass/fail with every reason, for the report and the run's tags."""
    name, better = config.metric, config.greater_is_better
    reasons: list[str] = []
    passed = math.isfinite(candidate)
    if not passed:
        reasons.append(f"candidate {name} is {candidate}: not a finite number")
    if passed and config.min_value is not None:
        ok = candidate >= config.min_value if better else candidate <= config.min_value
        word = "at least" if better else "at most"
        reasons.append(
            f"candidate {name} {candidate:.4g} is {'' if ok else 'not '}{word} min_value "
            f"{config.min_value:g}"
        )
        passed = ok
    if passed and champion is None:
        reasons.append("no champion to compare with: the first model passes on its own")
    elif passed and champion is not None:
        bound = champion - config.min_delta if better else champion + config.min_delta
        ok = candidate >= bound if better else candidate <= bound
        relation = ">=" if better else "<="
        reasons.append(
            f"candidate {name} {candidate:.4g} {relation if ok else 'fails ' + relation} "
            f"champion {champion:.4g} {'-' if better else '+'} min_delta {config.min_delta:g}"
        )
        passed = ok
    return Decision(passed, reasons)


def _bad(key: str, value: Any, expected: str) -> ConfigError:
    return ConfigError(
        f"{_WHERE}: `{PARAMS_KEY}.{key}` is {value!r}; expected {expected}",
        fix=f"correct `{PARAMS_KEY}.{key}` in {_WHERE}, or promote the notebook again",
        key=f"{PARAMS_KEY}.{key}",
    )


def _text(raw: dict[str, Any], key: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value:
        raise _bad(key, value, "a non-empty string")
    return value


def _flag(raw: dict[str, Any], key: str, default: bool) -> bool:
    value = raw.get(key, default)
    if not isinstance(value, bool):
        raise _bad(key, value, "true or false")
    return value


def _number(raw: dict[str, Any], key: str, default: float | None) -> Any:
    value = raw.get(key, default)
    if value is None or (isinstance(value, int | float) and not isinstance(value, bool)):
        return None if value is None else float(value)
    raise _bad(key, value, "a number" + (" or null" if default is None else ""))
