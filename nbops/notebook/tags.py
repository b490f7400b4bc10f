"""The cell-tag vocabulary ``nbops promote`` understands, kept as one table of data.

Like jupytext's format table, each tag is a row (pattern, role, source, doc) rather than a
branch in the parser: the parser asks :func:`classify` what a tag means, and the README renders
:func:`vocabulary_markdown`. Papermill's ``parameters`` and Kale's tags are accepted as written
so notebooks prepared for those tools promote without retagging.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Literal

Role = Literal[
    "parameters",  # the pipeline's parameters cell (literal assignments only)
    "step",  # starts a step named by the tag
    "prev",  # an explicit upstream step of the cell's step
    "skip",  # left out of the pipeline
    "setup",  # copied into every step
    "metrics",  # a step cell whose assigned names are the pipeline's metrics
    "metrics_print",  # Kale: a cell of print(name) lines naming metrics; not run
    "gate",  # the scoring cell the model gate repeats
    "gate_model",  # the variable holding the model the gate judges
    "gate_metric",  # the metric the gate compares
    "data",  # a file or folder the cell reads, when promote cannot work the path out
    "resource",  # Kale's Kubernetes resource tags: accepted, ignored
    "unknown",  # anyone else's tag: ignored
]
Source = Literal["papermill", "nbops", "kale"]

# Roles that decide where a cell goes; a cell may carry at most one of them.
PLACEMENT_ROLES: frozenset[str] = frozenset(
    {"parameters", "step", "skip", "setup", "metrics_print"}
)
MAX_NAME_LENGTH = 40
NAME_PATTERN = r"[a-z][a-z0-9_]*"


@dataclass(frozen=True)
class TagRule:
    """One row of the vocabulary.

    ``pattern`` is either an exact tag (``skip``) or a prefix followed by an upper-case
    placeholder (``step:NAME``, ``limit:RESOURCE:AMOUNT``): everything after the first ``:`` is
    the tag's argument. ``sticky`` rows keep Kale's rule that untagged cells below them join
    their block (nbops' own tags apply to the tagged cell only).
    """

    pattern: str
    role: Role
    source: Source
    doc: str
    sticky: bool = False

    @property
    def prefix(self) -> str:
        """``"step:"`` for ``step:NAME``; ``""`` for exact tags."""
        head, sep, _ = self.pattern.partition(":")
        return f"{head}{sep}" if sep else ""


@dataclass(frozen=True)
class TagMatch:
    """What one tag means: its row (``None`` when unknown) and the argument after the prefix."""

    tag: str
    role: Role
    rule: TagRule | None = None
    arg: str = ""  # "train" for "step:train", as written (not lower-cased)


TAGS: tuple[TagRule, ...] = (
    TagRule(
        "parameters",
        "parameters",
        "papermill",
        "The pipeline's parameters (one cell; literal assignments only), written to `params.yaml`.",
    ),
    TagRule("pipeline-parameters", "parameters", "kale", "Kale's spelling of `parameters`."),
    TagRule(
        "step:NAME",
        "step",
        "nbops",
        "Starts step NAME (lower-case letters, digits, `_`); untagged cells below join it. "
        "Same as Kale.",
    ),
    TagRule("block:NAME", "step", "kale", "Kale's legacy spelling of `step:NAME`."),
    TagRule(
        "prev:NAME",
        "prev",
        "nbops",
        "Step NAME runs before this cell's step, in addition to the upstream steps found from "
        "the variables it reads; repeatable. Same as Kale.",
    ),
    TagRule(
        "skip",
        "skip",
        "nbops",
        "Left out of the pipeline (exploration, plots, `!pip install`). Same as Kale.",
    ),
    TagRule(
        "injected-parameters",
        "skip",
        "papermill",
        "Values papermill injected into an executed copy: left out, `params.yaml` holds them.",
    ),
    TagRule("setup", "setup", "nbops", "Copied to the top of every step (imports, helpers)."),
    TagRule("imports", "setup", "kale", "Kale: like `setup`.", sticky=True),
    TagRule("functions", "setup", "kale", "Kale: like `setup`.", sticky=True),
    TagRule(
        "metrics",
        "metrics",
        "nbops",
        "A cell of the step above whose assigned names are the pipeline's reported metrics.",
    ),
    TagRule(
        "pipeline-metrics",
        "metrics_print",
        "kale",
        "Kale: `print(name)` lines naming the metrics; the cell itself is not run.",
        sticky=True,
    ),
    TagRule(
        "gate",
        "gate",
        "nbops",
        "On the cell that scores the model: the evaluation the model gate repeats (when the "
        "notebook scores several models or metrics, or to choose one it only prints).",
    ),
    TagRule(
        "model:VAR",
        "gate_model",
        "nbops",
        "The model gate judges variable VAR (the model the notebook keeps, e.g. the best of a "
        "loop over models), scored the way this cell (else the notebook's evaluation) scores.",
    ),
    TagRule(
        "metric:NAME",
        "gate_metric",
        "nbops",
        "The model gate compares metric NAME: a variable this cell assigns a score to, or a "
        "figure of a `classification_report` (`accuracy`, `f1_macro`, `f1_weighted`, ...).",
    ),
    TagRule(
        "data:PATH",
        "data",
        "nbops",
        "The cell reads PATH (a file or folder, relative to the notebook) when promote cannot "
        "work the path out: it is copied, versioned with DVC and validated; repeatable.",
    ),
    TagRule("limit:RESOURCE:AMOUNT", "resource", "kale", "Kale resource limit: ignored."),
    TagRule("annotation:KEY:VALUE", "resource", "kale", "Kale pod annotation: ignored."),
    TagRule("label:KEY:VALUE", "resource", "kale", "Kale pod label: ignored."),
    TagRule("image:IMAGE", "resource", "kale", "Kale base image: ignored."),
)


def classify(tag: str) -> TagMatch:
    """What ``tag`` means; unknown tags get role ``"unknown"`` (users have their own tags)."""
    for rule in TAGS:
        prefix = rule.prefix
        if (prefix and tag.startswith(prefix)) or tag == rule.pattern:
            return TagMatch(tag, rule.role, rule, tag[len(prefix) :] if prefix else "")
    return TagMatch(tag, "unknown")


def suggest(tag: str) -> str:
    """The known tag ``tag`` was probably meant to be (``Step:x`` -> ``step:x``), or ""."""
    lowered = tag.strip().lower()
    match = classify(lowered)
    if match.role != "unknown" and lowered != tag:
        return lowered
    return ""


def ignored_reason(tag: str) -> str:
    """Why promote ignores ``tag`` (for its notes): a likely typo, someone else's, or Kale's."""
    role = classify(tag).role
    if hint := suggest(tag):
        return f"did you mean {hint!r}?"
    if role == "unknown":
        return "not an nbops tag"
    return "a Kale resource tag; steps run locally" if role == "resource" else "on a text cell"


def is_step_name(name: str) -> bool:
    """Step names end up in file paths and ``dvc.yaml``: plain lower-case slugs only."""
    return len(name) <= MAX_NAME_LENGTH and re.fullmatch(NAME_PATTERN, name) is not None


def slugify(text: str) -> str:
    """A step name from free text: ``"## 1. Load data!"`` -> ``"load_data"``; "" if no letters.

    Accents are dropped (``é`` -> ``e``), leading characters up to the first letter too
    (numbered headings), runs of other characters become one ``_``, and the result is cut to
    40 characters at a ``_``.
    """
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    words = re.sub(r"[^a-z0-9]+", "_", ascii_text.lower())
    slug = re.sub(r"^[^a-z]+", "", words).strip("_")
    if len(slug) > MAX_NAME_LENGTH:
        cut = slug[:MAX_NAME_LENGTH]
        slug = cut.rsplit("_", 1)[0] if "_" in cut else cut
    return slug.strip("_")


def vocabulary_markdown() -> str:
    """The tag table as Markdown, for the README and ``nbops promote --help``."""
    lines = ["| tag | from | meaning |", "|---|---|---|"]
    for rule in TAGS:
        lines.append(f"| `{rule.pattern}` | {rule.source} | {rule.doc} |")
    lines.append(
        "\nAny other tag is ignored (with a note), so your own tags can stay. Untagged cells "
        "join the step above them (below Kale's `imports`, `functions` and `pipeline-metrics` "
        "they join that block, as in Kale); cells before the first `step:` form a step of "
        "their own, except cells that only import or define functions, which are setup."
    )
    return "\n".join(lines) + "\n"
