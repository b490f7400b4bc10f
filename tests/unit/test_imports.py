"""`%load_ext nbops` must stay cheap: no heavy library is imported by loading the extension
(the same kind of check as click's test_imports.py), checked in a fresh interpreter."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("mlflow", "dvc", "ipywidgets", "pandas", "numpy", "sklearn", "sqlalchemy", "papermill")

PROBE = """
import json, sys
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
before = set(sys.modules)
shell.run_line_magic("load_ext", "nbops")
assert "track" in shell.magics_manager.magics["cell"], "%%track not registered"
assert "nbops" in shell.magics_manager.magics["line"], "%nbops not registered"
print(json.dumps(sorted(set(sys.modules) - before)))
"""


def test_load_ext_does_not_import_heavy_libraries() -> None:
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    heavy = sorted({name.split(".")[0] for name in loaded} & set(HEAVY))
    assert heavy == [], f"%load_ext nbops imported {heavy}"


def test_importing_nbops_alone_is_cheap() -> None:
    code = f"import sys, nbops; print(sorted(set(sys.modules) & set({HEAVY!r})))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
