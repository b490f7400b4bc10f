"""The tag vocabulary: notebooks tagged for papermill or Kale must promote without retagging."""

from __future__ import annotations

import pytest

from nbops.notebook.tags import TAGS, classify, is_step_name, slugify, vocabulary_markdown

KALE_TAGS = {
    "imports": "setup",
    "functions": "setup",
    "pipeline-parameters": "parameters",
    "pipeline-metrics": "metrics_print",
    "skip": "skip",
    "step:train": "step",
    "block:train": "step",
    "prev:load": "prev",
    "limit:nvidia.com/gpu:1": "resource",
    "annotation:team/owner:ml": "resource",
    "label:tier:gold": "resource",
    "image:python:3.11-slim": "resource",
}


@pytest.mark.parametrize(("tag", "role"), sorted(KALE_TAGS.items()))
def test_every_kale_tag_is_classified(tag: str, role: str) -> None:
    match = classify(tag)
    assert match.role == role
    assert match.rule is not None


def test_papermill_and_nbops_tags() -> None:
    assert classify("parameters").role == "parameters"
    assert classify("parameters").rule.source == "papermill"
    assert classify("injected-parameters").role == "skip"
    assert classify("setup").role == "setup"
    assert classify("metrics").role == "metrics"


def test_prefix_tags_carry_their_argument_as_written() -> None:
    assert classify("step:Load_Data").arg == "Load_Data"
    assert classify("prev:load").arg == "load"
    assert classify("block:").arg == ""
    assert classify("limit:nvidia.com/gpu:1").arg == "nvidia.com/gpu:1"


def test_other_tags_are_unknown_not_errors() -> None:
    for tag in ("hide-input", "remove-cell", "steps", "Step:x", "parameters2"):
        match = classify(tag)
        assert match.role == "unknown" and match.rule is None


def test_kale_blocks_keep_untagged_cells_but_nbops_tags_do_not() -> None:
    sticky = {rule.pattern for rule in TAGS if rule.sticky}
    assert sticky == {"imports", "functions", "pipeline-metrics"}


def test_markdown_table_documents_every_row() -> None:
    text = vocabulary_markdown()
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    assert len(rows) == len(TAGS)
    for rule in TAGS:
        assert f"`{rule.pattern}`" in text and rule.doc in text


@pytest.mark.parametrize(
    ("text", "slug"),
    [
        ("Load data", "load_data"),
        ("## 1. Load data!", "load_data"),
        ("Évaluation du modèle", "evaluation_du_modele"),
        ("train-test  split", "train_test_split"),
        ("2024", ""),
        ("", ""),
    ],
)
def test_slugify(text: str, slug: str) -> None:
    assert slugify(text) == slug


def test_slugify_output_is_always_a_valid_step_name() -> None:
    long = slugify("a very long heading that goes on and on about feature engineering steps")
    assert len(long) <= 40 and not long.endswith("_")
    for text in ("Load data", "x" * 80, "Ünïcode Ök", "a" + "_b" * 30):
        assert is_step_name(slugify(text))


def test_step_names_are_plain_slugs() -> None:
    assert is_step_name("train_a2")
    for bad in ("", "../x", "a b", "2fast", "Train", "a-b", "x" * 41):
        assert not is_step_name(bad)
