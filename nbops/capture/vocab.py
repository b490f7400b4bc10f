"""The vocabularies capture relies on, kept as data so they are documented in one place.

The README quotes these tables; change them here, not in if-chains elsewhere.
"""

from __future__ import annotations

import re

# A computed numeric scalar whose variable name equals one of these, or contains one as a
# ``_``-separated part (``val_accuracy``, ``test_f1``, ``roc_auc_test``), is a metric.
METRIC_TERMS: frozenset[str] = frozenset(
    {
        "accuracy",
        "acc",
        "balanced_accuracy",
        "f1",
        "fbeta",
        "precision",
        "recall",
        "roc_auc",
        "auc",
        "pr_auc",
        "average_precision",
        "rmse",
        "mse",
        "mae",
        "mape",
        "medae",
        "r2",
        "log_loss",
        "logloss",
        "loss",
        "score",
        "error",
        "brier",
        "mcc",
        "kappa",
        "explained_variance",
    }
)

# Parameter names that look like credentials: their values are redacted before storing.
# Erring towards redaction, except for words that only contain a term (author, bypass, passes).
SECRET_NAME = re.compile(
    r"((?<!by)pass(word|wd)?(?!es|ing|enger)|secret|token|api[_-]?key|access[_-]?key"
    r"|private[_-]?key|credential|auth(?!or))",
    re.IGNORECASE,
)
REDACTED = "***redacted***"

# String literals that look like file paths (a separator, or a short extension).
PATH_LITERAL = re.compile(r"^[^\n\r\t<>|*?\"]{1,259}$")
PATH_HINT = re.compile(r"[/\\]|\.[A-Za-z0-9]{1,8}$")

# Estimator / splitter calls that should be seeded; warned about when random_state is missing.
SEEDED_FUNCTIONS: frozenset[str] = frozenset({"train_test_split"})

# Estimators whose random_state only matters for some settings (param -> the random values):
# Ridge/LogisticRegression draw numbers only in these solvers, Lasso/ElasticNet only with
# selection="random". Elsewhere random_state=None is not a reproducibility problem.
# SVC/NuSVC draw numbers only for probability=True (Platt scaling's internal cross-validation).
RANDOM_ONLY_WHEN: dict[str, frozenset[str]] = {
    "solver": frozenset({"sag", "saga", "liblinear"}),
    "selection": frozenset({"random"}),
    "probability": frozenset({"True"}),
}

# Draws from a global generator (numpy's legacy ``np.random.*``, the stdlib's ``random.*``):
# module -> (the drawing functions, how to seed it). Unseeded, they change on every run.
GLOBAL_DRAWS: dict[str, tuple[frozenset[str], str]] = {
    "numpy.random": (
        frozenset(
            {
                "rand",
                "randn",
                "randint",
                "random",
                "random_sample",
                "random_integers",
                "ranf",
                "sample",
                "choice",
                "shuffle",
                "permutation",
                "normal",
                "uniform",
                "binomial",
                "poisson",
                "exponential",
                "beta",
                "gamma",
                "lognormal",
                "standard_normal",
                "multivariate_normal",
                "multinomial",
            }
        ),
        "np.random.seed(<int>) before it (or draw from rng = np.random.default_rng(<int>))",
    ),
    "random": (
        frozenset(
            {
                "random",
                "randint",
                "randrange",
                "choice",
                "choices",
                "shuffle",
                "sample",
                "uniform",
                "gauss",
                "normalvariate",
                "triangular",
                "betavariate",
                "expovariate",
                "getrandbits",
            }
        ),
        "random.seed(<int>) before it",
    ),
}
# How a notebook seeds each global generator (searched in the kernel's input history).
SEED_CALLS: dict[str, re.Pattern[str]] = {
    "numpy.random": re.compile(r"\b(?:np|numpy)\.random\.seed\s*\(|(?<![\w.])seed\s*\("),
    "random": re.compile(r"(?<![\w.])random\.seed\s*\("),
}
# Generators created without a seed: a new random stream on every run.
UNSEEDED_GENERATORS: frozenset[str] = frozenset({"default_rng", "RandomState"})

# Methods whose first positional argument is the training input (used for the input example).
FIT_METHODS: frozenset[str] = frozenset({"fit", "fit_transform", "fit_predict", "partial_fit"})


def is_metric_name(name: str) -> bool:
    """True when ``name`` is a metric term or has one as a ``_``-separated part."""
    lowered = name.lower().strip("_")
    if lowered in METRIC_TERMS:
        return True
    padded = f"_{lowered}_"
    return any(f"_{term}_" in padded for term in METRIC_TERMS)


def is_secret_name(name: str) -> bool:
    return bool(SECRET_NAME.search(name))


def looks_like_path(text: str) -> bool:
    return bool(PATH_LITERAL.match(text)) and bool(PATH_HINT.search(text)) and "://" not in text
