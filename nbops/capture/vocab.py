"""The vocabularies capture relies on, kept as data so they are documented in one place.

The README quotes these tables; change them here, not in if-chains elsewhere.
"""

from __future__ import annotations

import functools
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

# Names that look like credentials: values bound to them are redacted before anything is stored,
# and promote refuses them in a notebook. A name is split into lower-case parts first (camelCase
# and any punctuation separate parts: ``apiKey`` -> ``api_key``, ``X-Auth-Token`` ->
# ``x_auth_token``). Terms match inside a part (``db_password``, ``oauthtoken``); erring towards
# redaction, except for words that only contain a term (author, bypass, passes, tokenizer) and
# short terms that also name ordinary things unless they end the name (``hf_token`` but not
# ``token_pattern`` or ``max_tokens``; ``db_pass`` but not ``pass_rate``).
SECRET_TERMS: tuple[str, ...] = (
    r"pass(?:word|wd|phrase)",  # password, passwd, passphrase, anywhere
    r"(?<![a-z])pass$",  # db_pass, smtp_pass
    r"(?<![a-z])pwd(?![a-z])",
    r"(?<![a-z])pw$",  # db_pw
    r"secret",
    r"token(?:_(?:value|str|string))?$",  # access_token, hf_token, oauthtoken, token
    r"api_?key",
    r"(?:access|private|account|master|signing|encryption|client|license|ssh)_?key",
    r"(?<![a-z])creds?(?![a-z])",
    r"credential",
    r"jwt",
    r"bearer",
    r"cookie",
    r"auth(?!or(?!i[sz]))",  # auth, oauth, authorization, authentication; not author(s)
)
SECRET_NAME = re.compile("|".join(SECRET_TERMS))
# ``key`` as a whole part is a secret (``key``, ``encryption_key``) unless a neighbouring part
# says it is a lookup key: ``sort_key``, ``join_key``, ``key_column``.
KEY_PART = "key"
KEY_NOT_SECRET_BEFORE: frozenset[str] = frozenset(
    {
        *("sort", "join", "group", "groupby", "primary", "foreign", "partition", "merge"),
        *("index", "lookup", "cache", "hash", "dict", "row", "col", "column", "unique", "hot"),
        *("shard", "object", "bucket", "blob", "redis", "dedup", "composite", "natural"),
        *("surrogate", "map", "id", "range", "cluster", "s3", "dynamo"),
    }
)
KEY_NOT_SECRET_AFTER: frozenset[str] = frozenset(
    {
        *("col", "cols", "column", "columns", "name", "names", "field", "fields", "type"),
        *("types", "path", "func", "fn", "len", "length", "id", "ids", "by", "map"),
    }
)
# A bare ``key`` is a secret only as a variable name: as a dict key, item, keyword or argument
# it is a column or a sort/group key (``df["key"]``, ``pd.Grouper(key="date")``).
# Environment variables whose names match but whose values are not secrets (paths, sockets).
ENV_NOT_SECRET: frozenset[str] = frozenset(
    {"PWD", "OLDPWD", "SSH_AUTH_SOCK", "XAUTHORITY", "GPG_AGENT_INFO", "KRB5CCNAME"}
)
ENV_MIN_LENGTH = 6  # shorter values would match ordinary words in messages

# Values that are secrets whatever they are called: (what, needles, pattern). The pattern is
# only run on text holding one of the needles (lower-cased), which is cheap; its group
# ``secret``, when present, is the part replaced (a URL keeps its scheme, user and host).
SECRET_VALUES: tuple[tuple[str, tuple[str, ...], str], ...] = (
    (
        "URL credentials",
        ("://",),
        r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s:/@'\"]*:(?P<secret>[^\s@/'\"]+)@",
    ),
    (
        "a private key",
        ("private key-----",),
        r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*KEY-----|$)",
    ),
    ("a bearer token", ("bearer",), r"(?i:\bbearer)\s+(?P<secret>[A-Za-z0-9._~+/-]{8,}=*)"),
    (
        "basic credentials",
        ("basic",),
        r"\bBasic\s+(?P<secret>(?=[A-Za-z+/]*[0-9])[A-Za-z0-9+/]{8,}={0,2})",
    ),
    (
        "a JSON web token",
        ("eyj",),
        r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",
    ),
    ("an API key (sk-)", ("sk-",), r"\bsk-[A-Za-z0-9_-]{16,}"),
    ("a Stripe key", ("k_live_", "k_test_"), r"\b[rs]k_(?:live|test)_[A-Za-z0-9]{10,}"),
    (
        "a GitHub token",
        ("gh", "github_pat_"),
        r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})",
    ),
    ("a GitLab token", ("glpat-",), r"\bglpat-[A-Za-z0-9_-]{20,}"),
    ("an AWS access key id", ("akia", "asia"), r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    ("a Slack token", ("xox",), r"\bxox[abposr]-[A-Za-z0-9-]{10,}"),
    ("a Google API key", ("aiza",), r"\bAIza[0-9A-Za-z_-]{35}"),
    ("a Hugging Face token", ("hf_",), r"\bhf_[A-Za-z0-9]{30,}"),
    ("an npm token", ("npm_",), r"\bnpm_[A-Za-z0-9]{36}"),
    ("a PyPI token", ("pypi-",), r"\bpypi-[A-Za-z0-9_-]{50,}"),
)
REDACTED = "***redacted***"

_CAMEL = re.compile(r"([a-z0-9])([A-Z])")
_CAMEL_UPPER = re.compile(r"([A-Z]+)([A-Z][a-z])")
_NOT_ALNUM = re.compile(r"[^a-z0-9]+")

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
# Methods whose arguments are data a model is evaluated on (MLflow's dataset context
# "evaluation"); a metric function's arguments are too (see nbops.capture.usage).
EVALUATION_METHODS: frozenset[str] = frozenset(
    {"predict", "predict_proba", "predict_log_proba", "decision_function", "score"}
)


def is_metric_name(name: str) -> bool:
    """True when ``name`` is a metric term or has one as a ``_``-separated part."""
    lowered = name.lower().strip("_")
    if lowered in METRIC_TERMS:
        return True
    padded = f"_{lowered}_"
    return any(f"_{term}_" in padded for term in METRIC_TERMS)


def name_parts(name: str) -> list[str]:
    """``"X-Api-Key"`` -> ``["x", "api", "key"]``: camelCase and punctuation separate parts."""
    spaced = _CAMEL_UPPER.sub(r"\1_\2", _CAMEL.sub(r"\1_\2", name))
    return [part for part in _NOT_ALNUM.split(spaced.lower()) if part]


def is_secret_key(name: str) -> bool:
    """A dict key, item or argument that names a secret: as :func:`is_secret_name`, except a
    bare ``key`` (``df["key"]``, ``{"key": ...}``: a column or lookup key, not a credential)."""
    return name_parts(name) != [KEY_PART] and is_secret_name(name)


# Every secret name holds one of these (lower-cased): names without any are ruled out at once.
SECRET_HINT = re.compile(r"pw|pass|secret|token|key|cred|jwt|bearer|cookie|auth")


@functools.lru_cache(maxsize=4096)
def is_secret_name(name: str) -> bool:
    """Whether ``name`` (a variable, key, parameter or header name) looks like a credential."""
    if not SECRET_HINT.search(name.lower()):
        return False
    parts = name_parts(name)
    if SECRET_NAME.search("_".join(parts)):
        return True
    for i, part in enumerate(parts):
        if part != KEY_PART:
            continue
        before = parts[i - 1] if i else ""
        after = parts[i + 1] if i + 1 < len(parts) else ""
        if before not in KEY_NOT_SECRET_BEFORE and after not in KEY_NOT_SECRET_AFTER:
            return True
    return False


def looks_like_path(text: str) -> bool:
    return bool(PATH_LITERAL.match(text)) and bool(PATH_HINT.search(text)) and "://" not in text
