"""What the zygote imports ahead of the stages, and in which order.

The stages' needs, in the order ``dvc.yaml`` lists them (DVC's order for a linear pipeline):
the data gate needs pandas, pandera and scipy; a step needs ipykernel, the nbops step runtime and
the modules its notebook's ``nbops-setup`` cell imports; the model gate needs MLflow. An entry
``module:function`` also calls the function (a cache a library fills on first use). A module
is preloaded only if it is installed outside the project (a package in site-packages or the
standard library: importing the user's own modules early could run their code before its
time) and is not known to start threads at import (a fork of a threaded process can deadlock).
"""

from __future__ import annotations

import ast
import importlib.util
import os
import sysconfig
from collections.abc import Iterable
from pathlib import Path

from nbops.pipeline import layout

KERNEL = (
    "ipykernel.kernelapp",
    "ipykernel.ipkernel",
    "IPython",
    "zmq",
    "nbops.pipeline.runtime",
    "nbops.pipeline.serializers",
    "nbops.session",
    "nbops.capture",
    "nbops.display",
    "numpy",
    "pandas",
    "pyarrow",
    "xxhash",
    "joblib",
    "sklearn",
    "sklearn.base",
)
GATES = {
    ("validate", "data"): (
        "nbops.cli",
        "nbops.validate.data",
        "yaml",
        "pandas",
        "pandera",
        "scipy.stats",
    ),
    ("validate", "model"): (
        "nbops.cli",
        "nbops.validate.model",
        "mlflow",
        "mlflow.sklearn",
        "mlflow.pyfunc",
        "mlflow.store.tracking.sqlalchemy_store",
        "mlflow.store.model_registry.sqlalchemy_store",
        "nbops.store.mlflow_store",
        "nbops.store.registry_store",
        "nbops.registry",
        # MLflow maps every installed package when it saves a model (~1.5 s): once, here
        "nbops.store.mlflow_packages:prime",
    ),
}
# Top-level packages known to start threads or processes when imported (or whose import
# selects process-wide backends): never preloaded; a step that imports them pays for it.
NEVER = frozenset(
    {"torch", "tensorflow", "keras", "jax", "ray", "dask", "pyspark", "multiprocessing",
     "concurrent", "grpc", "tkinter", "matplotlib", "seaborn", "cupy", "numba", "tqdm"}
)  # fmt: skip


def modules(folder: Path) -> list[str]:
    """The zygote's preload list for the pipeline in ``folder``, first needed first."""
    ordered: list[str] = []
    for argv in stage_commands(folder):
        ordered += needs(argv, folder)
    return list(dict.fromkeys(ordered))


def needs(argv: list[str], folder: Path | None = None) -> list[str]:
    """The modules one stage command needs before its child is forked."""
    if argv[:1] == ["step"]:
        notebook = (folder or Path.cwd()) / argv[1] if len(argv) > 1 else None
        return [*KERNEL, *setup_imports(notebook)]
    command = (argv[0], argv[1]) if len(argv) > 1 else ("", "")
    return list(GATES.get(command, ("nbops.cli",)))


def kernel_needs(folder: Path) -> tuple[str, ...]:
    """What a kernel started before its step is known needs: every step's setup imports."""
    found = list(KERNEL)
    for argv in stage_commands(folder):
        if argv[:1] == ["step"]:
            found += needs(argv, folder)
    return tuple(dict.fromkeys(found))


def stage_commands(folder: Path) -> list[list[str]]:
    """The ``nbops ...`` argv of each stage in ``dvc.yaml``, in order."""
    data = layout.read_yaml(folder / layout.DVC_YAML) or {}
    found = []
    for stage in (data.get("stages") or {}).values():
        cmd = stage.get("cmd") if isinstance(stage, dict) else None
        words = cmd.split() if isinstance(cmd, str) else []
        if words[:1] == ["nbops"]:
            found.append(words[1:])
    return found


def setup_imports(notebook: Path | None) -> list[str]:
    """Modules imported by the step notebook's ``nbops-setup`` cells that are safe to
    preload."""
    if notebook is None or not notebook.is_file():
        return []
    try:
        nb = layout.read_notebook(notebook)
    except Exception:
        return []
    names: list[str] = []
    for source in layout.tagged_code(nb, layout.TAG_SETUP):
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names += [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.append(node.module)
    return [name for name in dict.fromkeys(names) if safe(name)]


def safe(name: str) -> bool:
    """Installed outside the project and not known to start threads at import."""
    if name.split(".")[0] in NEVER:
        return False
    try:
        spec = importlib.util.find_spec(name.split(".")[0])
    except (ImportError, ValueError):
        return False
    origin = getattr(spec, "origin", None) if spec is not None else None
    if not origin or origin in ("built-in", "frozen"):
        return spec is not None
    return _installed(origin)


def _installed(path: str) -> bool:
    roots = {sysconfig.get_paths()[key] for key in ("stdlib", "platstdlib", "purelib", "platlib")}
    real = os.path.realpath(path)
    return any(real.startswith(os.path.realpath(root) + os.sep) for root in roots)


def driver(preimport: Iterable[str] = ("papermill", "nbclient", "jupyter_client.manager")) -> None:
    """Import what the executor itself needs to drive a step (in a background thread)."""
    from nbops._lazy import without_slow_optional_imports

    with without_slow_optional_imports():
        for name in preimport:
            try:
                importlib.import_module(name)
            except Exception:  # the step reports it, with the real error
                return
