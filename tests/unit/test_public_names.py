"""Public names of ``nbops`` that share their name with a submodule keep working after that
submodule is imported (Python then binds the package attribute to the submodule)."""

from __future__ import annotations

import importlib

import nbops


def test_fingerprint_is_callable_after_its_module_is_imported() -> None:
    module = importlib.import_module("nbops.hashing")
    assert nbops.fingerprint([1, 2, 3]) == module.fingerprint([1, 2, 3])
    assert nbops.fingerprint([1, 2, 3]).startswith("xxh128:")
    assert nbops.fingerprint([1, 2, 3]) != nbops.fingerprint([1, 2, 4])
