"""Where settings come from, in the documented order of precedence."""

from __future__ import annotations

from pathlib import Path

import pytest

from nbops.config import find_project_root, load_config
from nbops.errors import ConfigError


def test_default_store_is_sqlite_at_the_project_root(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    sub = tmp_path / "notebooks" / "deep"
    sub.mkdir(parents=True)
    config = load_config(sub, env={})
    assert config.project_root == tmp_path
    assert config.tracking_uri == f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert config.is_default_store


def test_pyproject_then_env_then_mlflow_variable(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.nbops]\ntracking_uri = "sqlite:///runs.db"\nasync_write = false\n'
    )
    assert load_config(tmp_path, env={}).tracking_uri == f"sqlite:///{tmp_path / 'runs.db'}"
    assert load_config(tmp_path, env={}).async_write is False
    env = {"NBOPS_TRACKING_URI": "http://a:5000", "NBOPS_ASYNC_WRITE": "yes"}
    config = load_config(tmp_path, env=env)
    assert config.tracking_uri == "http://a:5000" and config.async_write is True
    env["MLFLOW_TRACKING_URI"] = "http://b:5000"
    assert load_config(tmp_path, env=env).tracking_uri == "http://b:5000"


def test_unknown_setting_names_the_file_and_the_fix(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.nbops]\ntraking_uri = 'x'\n")
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path, env={})
    assert "traking_uri" in str(info.value) and "pyproject.toml" in str(info.value)
    assert "README" in info.value.fix


def test_bad_boolean_in_env_says_which_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path, env={"NBOPS_ASYNC_WRITE": "maybe"})
    assert "NBOPS_ASYNC_WRITE" in str(info.value)


def test_invalid_toml_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.nbops\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(tmp_path, env={})


def test_root_falls_back_to_the_start_folder(tmp_path: Path) -> None:
    assert find_project_root(tmp_path) in (tmp_path, *tmp_path.parents)


def test_project_root_can_be_pinned_by_env(tmp_path: Path) -> None:
    (tmp_path / "pipe" / ".dvc").mkdir(parents=True)
    config = load_config(tmp_path / "pipe", env={"NBOPS_PROJECT_ROOT": str(tmp_path)})
    assert config.project_root == tmp_path
    assert config.state_dir == tmp_path / ".nbops"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('tool = "x"\n', "tool = a str"),
        ('[tool]\nnbops = "x"\n', "tool.nbops = a str"),
    ],
)
def test_a_tool_table_that_is_not_a_table_is_a_config_error(
    tmp_path: Path, text: str, expected: str
) -> None:
    (tmp_path / "pyproject.toml").write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path, env={})
    assert expected in str(info.value) and "[tool.nbops]" in info.value.fix


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("flush_timeout", "inf"),
        ("flush_timeout", "nan"),
        ("flush_timeout", "-1"),
        ("delivery", "x"),
    ],
)
def test_out_of_range_settings_say_what_is_allowed(tmp_path: Path, key: str, value: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path, env={f"NBOPS_{key.upper()}": value})
    assert key in str(info.value) and f"NBOPS_{key.upper()}" in info.value.fix


def test_delivery_modes(tmp_path: Path) -> None:
    for mode in ("auto", "async", "sync"):
        assert load_config(tmp_path, env={"NBOPS_DELIVERY": mode}).delivery == mode
