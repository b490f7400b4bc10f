"""Serving the champion: ``nbops serve`` (MLflow's scoring server behind a front that follows
the alias, logging what it serves), the ``deploy`` stage, and ``serve()`` for notebooks.

Modules: ``target`` (what is served, where its files are), ``backend`` (one ``mlflow models
serve``), ``router`` and ``deployer`` (the zero-downtime switch), ``front`` (the HTTP server in
front), ``predlog``/``logread`` (the request log), ``reference`` and ``smoke`` (the gate's
holdout, the smoke test), ``server`` (the CLI's foreground server), ``handle`` (the notebook's
background server), ``deploy`` (the pipeline stage). Nothing heavy is imported until used.
"""

from __future__ import annotations

from nbops._lazy import lazy_getattr

_LAZY = {
    "serve": "nbops.serve.handle",
    "Server": "nbops.serve.handle",
    "Answer": "nbops.serve.handle",
    "deploy": "nbops.serve.deploy",
}
__all__ = list(_LAZY)
__getattr__ = lazy_getattr(__name__, _LAZY)
