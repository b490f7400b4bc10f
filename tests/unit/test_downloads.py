"""nbops' own downloads draw no MLflow progress bar; the user's setting is back afterwards."""

from __future__ import annotations

import os

import pytest

from nbops.store.downloads import VARIABLE, quiet


@pytest.mark.parametrize("users", [None, "true"])
def test_quiet_only_while_nbops_downloads(
    users: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    if users is None:
        monkeypatch.delenv(VARIABLE, raising=False)
    else:
        monkeypatch.setenv(VARIABLE, users)
    with quiet():
        assert os.environ[VARIABLE] == "false"
        with quiet():  # an nbops download inside another
            assert os.environ[VARIABLE] == "false"
        assert os.environ[VARIABLE] == "false"
    assert os.environ.get(VARIABLE) == users
