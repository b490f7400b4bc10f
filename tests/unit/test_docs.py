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
