"""The one redaction pass: names, value patterns, environment values, code, whole records."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nbops.capture.code_secrets import find_secrets
from nbops.capture.redact import (
    env_name,
    redact_code,
    redact_params,
    redact_record,
    redact_value,
    scrub_text,
    secret_env_values,
    secret_path,
)
from nbops.capture.vocab import REDACTED, is_secret_key, is_secret_name
from nbops.record import DataRef, RunRecord

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


# Every way a notebook binds a literal to a secret (issue 15): the literal never survives.
CODE_CASES = {
    "tuple unpacking": 'user, password = "admin", "CANARY"',
    "nested unpacking": '(user, (host, pwd)) = ("a", ("h", "CANARY"))',
    "parenthesised": 'password = ("CANARY")',
    "str() call": 'password = str("CANARY")',
    "method on a literal": 'password = "CANARY".strip()',
    "os.environ item": 'os.environ["API_KEY"] = "CANARY"',
    "dict item": 'cfg["password"] = "CANARY"',
    "attribute": 'settings.db_password = "CANARY"',
    "augmented": 'token += "CANARY"',
    "walrus": 'if (secret := "CANARY"):\n    pass',
    "a list": 'passwords = ["CANARY", "CANARY"]',
    "concatenation": 'password = "CAN" + "ARY"',
    "conditional": 'pwd = "CANARY" if prod else "CANARY"',
    "fallback": 'token = os.environ.get("TOKEN") or "CANARY"',
    "env default": 'token = os.environ.get("TOKEN", "CANARY")',
    "setdefault": 'os.environ.setdefault("API_KEY", "CANARY")',
    "set_tag": 'nbops.set_tag("token", "CANARY")',
    "log_param": 'nbops.log_param("db_password", "CANARY")',
    "keyword": 'engine = connect(host="h", password="CANARY")',
    "default": 'def login(user, password="CANARY"):\n    pass',
    "kw-only default": 'def login(*, token="CANARY"):\n    pass',
    "lambda default": 'f = lambda secret="CANARY": secret',
    "class attribute": 'class Cfg:\n    api_key: str = "CANARY"',
    "nested dict": 'cfg = {"db": {"host": "h", "password": "CANARY"}}',
    "authorization header": 'headers = {"Authorization": "Bearer CANARY123"}',
    "f-string": 'token = f"{prefix}CANARY"',
    "for loop": 'for password in ["CANARY"]:\n    pass',
    "comparison": 'if password == "CANARY":\n    pass',
    "bytes": 'key = b"CANARY"',
    "pwd": 'pwd = "CANARY"',
    "creds": 'creds = "CANARY"',
    "jwt": 'jwt = "CANARY"',
    "bearer": 'bearer = "CANARY"',
    "key": 'key = "CANARY"',
    "camelCase": 'apiKey = "CANARY"',
    "URL credentials": 'db_url = "postgresql://admin:CANARY@db:5432/app"',
    "key prefix": 'client = OpenAI("sk-CANARYCANARYCANARY12")',
    "unicode around": 'é = "ü"; password = "CANARY"; ß = "ö"',
    "line continuation": 'password = \\\n    "CANARY"',
}


@pytest.mark.parametrize("source", CODE_CASES.values(), ids=CODE_CASES.keys())
def test_every_way_of_binding_a_secret_is_redacted(source: str) -> None:
    redacted = redact_code(source)
    assert "CANARY" not in redacted and "CAN" not in redacted.replace("CANARY", "")
    assert redact_code(redacted) == redacted
    compile(redacted, "cell", "exec")  # still Python: the stored code stays readable


def test_ipython_syntax_uses_the_translation_to_find_unpacked_secrets() -> None:
    raw = '%time x = 1\nuser, password = "admin", "CANARY"\n!ls'
    python = (
        "get_ipython().run_line_magic('time', 'x = 1')\n"
        'user, password = "admin", "CANARY"\n'
        "get_ipython().system('ls')"
    )
    assert "CANARY" not in redact_code(raw, python=python)
    assert "%time x = 1" in redact_code(raw, python=python)


@pytest.mark.parametrize(
    "source",
    [
        'df = pd.read_csv("data/passengers.csv")',
        'tok = AutoTokenizer.from_pretrained("bert-base-uncased")\nmax_tokens = 512',
        'df = df.merge(other, on="key").set_index("key")',
        'df["key"] = "x"\nsort_key = "date"\nkey_col = "customer_id"',
        'g = df.groupby(pd.Grouper(key="date", freq="M"))',
        'r = requests.get(u, headers={"Authorization": f"Bearer {token}"}, auth=(user, pw))',
        'api_key = os.environ.get("API_KEY", "")\npassword = ""',
        'print("password:", pw)\nlogger.info("token refreshed")',
        'authors = ["Ada"]\ncompass = "north"\nn_passes = 3',
        's3.get_object(Bucket="b", Key="data/x.csv")',
        'df = df.rename(columns={"password": "pw_hash"})  # nbops: not-secret',
    ],
)
def test_ordinary_data_science_code_has_no_findings(source: str) -> None:
    assert find_secrets(source) == []


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


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("password", True),
        ("db_pass", True),
        ("DBPassword", True),
        ("api_key", True),
        ("apiKey", True),
        ("x-api-key", True),
        ("oauth_token", True),
        ("AUTH_HEADER", True),
        ("Authorization", True),
        ("pwd", True),
        ("db_pw", True),
        ("creds", True),
        ("credentials", True),
        ("jwt", True),
        ("bearer", True),
        ("key", True),
        ("encryption_key", True),
        ("AccountKey", True),
        ("session_cookie", True),
        ("client_secret", True),
        ("author", False),
        ("authors", False),
        ("bypass_cache", False),
        ("n_passes", False),
        ("passenger_count", False),
        ("max_tokens", False),
        ("tokenizer", False),
        ("sort_key", False),
        ("key_column", False),
        ("keyboard", False),
        ("monkey", False),
        ("compass", False),
    ],
)
def test_secret_names_are_redacted_but_words_that_only_contain_a_term_are_not(
    name: str, secret: bool
) -> None:
    assert is_secret_name(name) is secret


def test_a_bare_key_is_a_secret_only_as_a_variable_name() -> None:
    assert is_secret_name("key") and not is_secret_key("key")
    assert is_secret_key("api_key") and is_secret_key("Authorization")


def test_params_are_redacted_at_any_depth() -> None:
    params = {
        "api_key": "x",
        "nested_password": {"a": 1},
        "alpha": 0.5,
        "db": {"host": "h", "password": "p", "replicas": [{"token": "t"}]},
        "url": "postgresql://admin:pw@db/app",
        "columns": {"key": "id"},
    }
    assert redact_params(params) == {
        "api_key": REDACTED,
        "nested_password": REDACTED,
        "alpha": 0.5,
        "db": {"host": "h", "password": REDACTED, "replicas": [{"token": REDACTED}]},
        "url": f"postgresql://admin:{REDACTED}@db/app",
        "columns": {"key": "id"},
    }


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("connect to postgresql://admin:S3cret@db:5432/x failed", "postgresql://admin:"),
        ("login failed: password=hunter2 user=bob", "user=bob"),
        ('{"token": "abc def"}', '{"token": '),
        ("Authorization: Bearer abcdefgh1234", "Authorization"),
        ("key sk-proj-abcdefghijklmnop1234 rejected", "rejected"),
        ("ghp_abcdefghijklmnopqrstuvwxyz0123 is revoked", "is revoked"),
        ("AKIAABCDEFGHIJKLMNOP", ""),
        ("xoxb-1234567890-abcdef", ""),
        ("glpat-abcdefghijklmnopqrst", ""),
        ("-----BEGIN RSA PRIVATE KEY-----\nMIIabc\n-----END RSA PRIVATE KEY-----", ""),
        ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.abcdefghijk", "jwt "),
    ],
)
def test_messages_lose_credentials_by_their_look(text: str, kept: str) -> None:
    scrubbed = scrub_text(text)
    assert REDACTED in scrubbed and kept in scrubbed
    secret_bits = ["S3cret", "hunter2", "abc def", "abcdefgh1234", "abcdefghijklmnop1234"]
    assert not any(bit in scrubbed for bit in secret_bits)
    assert scrub_text(scrubbed) == scrubbed


def test_exception_types_and_ordinary_messages_are_kept() -> None:
    for text in ["TokenError: EOF in multi-line statement", "KeyError: 'password'", "x = 1"]:
        assert scrub_text(text) == text


def test_values_of_secret_environment_variables_are_scrubbed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DB_PASSWORD", "env-canary-value")
    monkeypatch.setenv("PLAIN_SETTING", "plain-value-kept")
    monkeypatch.setenv("SHORT_TOKEN", "abc")  # too short to scrub from messages
    assert "env-canary-value" in secret_env_values()
    assert "plain-value-kept" not in secret_env_values()
    message = "OperationalError: auth failed for env-canary-value (plain-value-kept, abc)"
    assert scrub_text(message) == (
        f"OperationalError: auth failed for {REDACTED} (plain-value-kept, abc)"
    )
    assert "env-canary-value" not in redact_code("x = 'env-canary-value'")


def test_the_working_directory_is_not_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PWD", "/home/user/project")
    assert "/home/user/project" not in secret_env_values()


def test_redact_record_covers_every_stored_string(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_TOKEN", "env-token-canary")
    record = RunRecord(
        name="run",
        params={"db": {"password": "p1-canary"}},
        tags={"token": "t-canary", "note": "see https://u:p2-canary@host/x"},
        error="RuntimeError: cannot use env-token-canary",
        warnings=["--params x: password=p3-canary"],
        code='api_key = "p4-canary"\n',
        code_hash="sha256:old",
        data=[DataRef("s3://u:p5-canary@b/x.csv", "input", "file", note="")],
    )
    redact_record(record)
    text = record.to_json()
    assert "canary" not in text, text
    assert record.code_hash != "sha256:old"  # the hash is of the code as stored
    assert record.tags == {"token": REDACTED, "note": f"see https://u:{REDACTED}@host/x"}
    assert redact_record(record).to_json() == text  # the spool may redact again: a no-op


def test_secret_path_finds_what_promote_must_refuse() -> None:
    assert secret_path("x", "api_token") == ["api_token"]
    assert secret_path({"host": "h", "password": "p"}, "db") == ["db", "password"]
    assert secret_path(["a", "mysql://u:p@h/d"], "urls") == ["urls", "1"]
    assert secret_path(None, "api_token") is None  # a placeholder holds no secret
    assert secret_path("", "password") is None
    assert secret_path(0.5, "alpha") is None
    assert env_name(["db", "password"]) == "DB_PASSWORD"
    assert redact_value(("a", "postgres://u:pw@h"))[1] == f"postgres://u:{REDACTED}@h"
