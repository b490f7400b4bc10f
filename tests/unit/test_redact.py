"""Secrets out of the recorded code: string literals bound to secret-looking names."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nbops.capture.redact import redact_code, redact_params
from nbops.capture.vocab import REDACTED

Q = repr(REDACTED)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ('api_key = "sk-1"\nlr = 0.1', f"api_key = {Q}\nlr = 0.1"),
        ("token: str = 'abc'", f"token: str = {Q}"),
        ("db = connect(password='p' \"q\", user='u')", f"db = connect(password={Q}, user='u')"),
        ('cfg = {"Api-Key": "v", "n": "keep"}', f'cfg = {{"Api-Key": {Q}, "n": "keep"}}'),
        ("%time DB_PASSWORD = 'h'\n!echo $TOKEN", f"%time DB_PASSWORD = {Q}\n!echo $TOKEN"),
        ('s = """\ntext"""; secret = f"{a}b"', f's = """\ntext"""; secret = {Q}'),
        ("token = os.environ['TOKEN']", "token = os.environ['TOKEN']"),  # no literal: kept
        ("def f():\n    pass", "def f():\n    pass"),
        ('x = "unterminated', 'x = "unterminated'),
    ],
)
def test_literals_bound_to_secret_names_are_redacted(source: str, expected: str) -> None:
    assert redact_code(source) == expected


@settings(max_examples=300, deadline=None)
@given(
    st.text(max_size=80)
    | st.builds(
        "{} = {!r}{}".format, st.text(max_size=10), st.text(max_size=10), st.text(max_size=20)
    )
)
def test_any_source_is_handled_and_redacting_twice_changes_nothing(source: str) -> None:
    once = redact_code(source)
    assert redact_code(once) == once


def test_params_with_secret_names_are_redacted() -> None:
    params = {"api_key": "x", "nested_password": {"a": 1}, "alpha": 0.5}
    assert redact_params(params) == {"api_key": REDACTED, "nested_password": REDACTED, "alpha": 0.5}


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("password", True),
        ("db_pass", True),
        ("api_key", True),
        ("oauth_token", True),
        ("AUTH_HEADER", True),
        ("author", False),
        ("bypass_cache", False),
        ("n_passes", False),
        ("passenger_count", False),
    ],
)
def test_secret_names_are_redacted_but_words_that_only_contain_a_term_are_not(
    name: str, secret: bool
) -> None:
    from nbops.capture.vocab import is_secret_name

    assert is_secret_name(name) is secret
