"""Errors cross process boundaries (pipeline steps) and reach the CLI with their fields."""

from __future__ import annotations

import pickle

import pytest

from nbops import errors


@pytest.mark.parametrize(
    "cls",
    [c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, errors.NbopsError)],
)
def test_every_error_pickles_with_its_fields_and_fix(cls: type[errors.NbopsError]) -> None:
    err = cls("cell 3 is broken", fix="tag it `skip`", cell=3, path="nb.ipynb")
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is cls
    assert back.message == "cell 3 is broken" and back.fix == "tag it `skip`"
    assert back.cell == 3 and back.path == "nb.ipynb"
    assert str(back) == "cell 3 is broken\n  fix: tag it `skip`"


def test_exit_codes_are_distinct_per_class() -> None:
    classes = [
        c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, errors.NbopsError)
    ]
    codes = [c.exit_code for c in classes if c is not errors.NbopsError]
    assert all(code > 0 for code in codes)
    assert len(set(codes)) >= len(codes) - 2  # usage and config errors share the "bad input" code
