"""The README documents the tag vocabulary exactly as the code's table defines it."""

from __future__ import annotations

from pathlib import Path

from nbops.notebook.tags import vocabulary_markdown

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_tag_table_matches_the_code() -> None:
    text = README.read_text(encoding="utf-8")
    table = [line for line in vocabulary_markdown().splitlines() if line.startswith("|")]
    assert table and all(line in text for line in table), "regenerate the README's tag table"


def test_readme_opens_with_the_two_setup_commands() -> None:
    text = README.read_text(encoding="utf-8")
    block = text.split("```bash", 1)[1].split("```", 1)[0]
    assert [line.split("#")[0].strip() for line in block.strip().splitlines()] == [
        "make demo",
        "make test",
    ]


def test_the_secrets_page_lists_the_vocabulary_of_the_code() -> None:
    from nbops.capture import vocab

    page = (README.parent / "docs" / "secrets.md").read_text(encoding="utf-8")
    words = set(page.replace(",", " ").replace(".", " ").replace(";", " ").split())
    for what, _, _ in vocab.SECRET_VALUES:
        assert f"| {what} |" in page, what
    for group in (vocab.KEY_NOT_SECRET_BEFORE, vocab.KEY_NOT_SECRET_AFTER, vocab.ENV_NOT_SECRET):
        assert set(group) <= words, set(group) - words
    assert f"{vocab.ENV_MIN_LENGTH} characters" in page
    assert "docs/secrets.md" in README.read_text(encoding="utf-8")
