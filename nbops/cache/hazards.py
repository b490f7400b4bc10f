"""What makes a cell's result depend on more than its key, read from its code (and the code of
the notebook functions it calls): such a cell is never served from the cache unless
``%%track --cache=force``, and the summary says why it ran.

The vocabulary is data (:data:`HAZARDS`): patterns over the qualified name a call resolves to
in the namespace (``np.random.rand`` -> ``numpy.random.rand``, ``datetime.now`` ->
``datetime.datetime.now``). Calls that cannot be resolved before the cell runs (a method of an
object the cell creates) are matched by their last name where that is unambiguous.
The files a cell reads and writes are :mod:`nbops.cache.files`' job.
"""

from __future__ import annotations

import ast
import builtins
import fnmatch
import inspect
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from nbops.capture.scan import dotted
from nbops.capture.vocab import GLOBAL_DRAWS, SEEDED_FUNCTIONS, UNSEEDED_GENERATORS

RANDOM = "reads the global random state"
SEEDS = "sets the global random state (which later cells read)"
CLOCK = "reads the clock"
NETWORK = "reads from the network"
DATABASE = "reads a database (whose content is not in the key)"
STATE = "changes global state"
INPUT = "asks for input"
ENVIRONMENT = "reads an environment variable (not in the key)"
IPYTHON = "runs IPython magics or shell commands"

_DRAWS = [f"numpy.random.{name}" for name in sorted(GLOBAL_DRAWS["numpy.random"][0])]
_DRAWS += [f"random.{name}" for name in sorted(GLOBAL_DRAWS["random"][0])]
# (pattern over the qualified callee, what it does): the first match wins.
HAZARDS: tuple[tuple[str, str], ...] = (
    *((pattern, RANDOM) for pattern in _DRAWS),
    ("numpy.random.seed", SEEDS),
    ("numpy.random.set_state", SEEDS),
    ("random.seed", SEEDS),
    ("random.setstate", SEEDS),
    ("torch.manual_seed", SEEDS),
    ("time.time", CLOCK),
    ("time.time_ns", CLOCK),
    ("time.perf_counter*", CLOCK),
    ("time.monotonic*", CLOCK),
    ("time.process_time*", CLOCK),
    ("time.localtime", CLOCK),
    ("time.gmtime", CLOCK),
    ("time.ctime", CLOCK),
    ("time.asctime", CLOCK),
    ("datetime.datetime.now", CLOCK),
    ("datetime.datetime.utcnow", CLOCK),
    ("datetime.datetime.today", CLOCK),
    ("datetime.date.today", CLOCK),
    ("pandas.*Timestamp.now", CLOCK),
    ("pandas.*Timestamp.today", CLOCK),
    ("pandas.*Timestamp.utcnow", CLOCK),
    ("uuid.uuid1", CLOCK),
    ("uuid.uuid4", RANDOM),
    ("os.urandom", RANDOM),
    ("secrets.*", RANDOM),
    ("requests.*", NETWORK),
    ("httpx.*", NETWORK),
    ("urllib.request.*", NETWORK),
    ("urllib3.*", NETWORK),
    ("http.client.*", NETWORK),
    ("socket.*", NETWORK),
    ("aiohttp.*", NETWORK),
    ("ftplib.*", NETWORK),
    ("smtplib.*", NETWORK),
    ("sklearn.datasets.*fetch_*", NETWORK),
    ("datasets.*load_dataset", NETWORK),
    ("openml.*", NETWORK),
    ("pandas.*read_sql*", DATABASE),
    ("sqlalchemy.*", DATABASE),
    ("sqlite3.*", DATABASE),
    ("pandas.*set_option", STATE),
    ("pandas.*reset_option", STATE),
    ("matplotlib.use", STATE),
    ("matplotlib.rc", STATE),
    ("matplotlib.*style.use", STATE),
    ("sklearn.*set_config", STATE),
    ("numpy.*set_printoptions", STATE),
    ("numpy.*seterr", STATE),
    ("os.chdir", STATE),
    ("os.putenv", STATE),
    ("os.unsetenv", STATE),
    ("os.getenv", ENVIRONMENT),
    ("os.environ.get", ENVIRONMENT),
    ("os.environ.*", STATE),
    ("sys.path.*", STATE),
    ("sys.setrecursionlimit", STATE),
    ("warnings.filterwarnings", STATE),
    ("warnings.simplefilter", STATE),
    ("logging.basicConfig", STATE),
    ("builtins.input", INPUT),
    ("getpass.getpass", INPUT),
)
_GLOBAL_INSTANCES = (
    ("numpy.random.mtrand", "_rand", "numpy.random"),
    ("random", "_inst", "random"),
)
_URL_SCHEMES = ("http://", "https://", "ftp://", "s3://", "gs://", "hf://", "az://")
_SAMPLERS = frozenset({"sample"})


@dataclass
class Hazard:
    """One reason a cell is not served from the cache: where and what it does."""

    where: str  # "line 3" or "f() (line 2 of its cell)"
    call: str  # as written
    reason: str

    def __str__(self) -> str:
        return f"{self.where}: {self.call} {self.reason}"


def scan_code(
    tree: ast.AST, source: str, ns: Mapping[str, Any], where: str = "line"
) -> list[Hazard]:
    """The hazards of one parsed piece of code; ``where`` prefixes line numbers (``f() line``
    for a function's body)."""
    hazards: list[Hazard] = []
    aliases = imports(tree)  # `import numpy as np` in the cell itself: np is numpy
    shells = _ipython_calls(tree)  # `!ls` became get_ipython().system('ls'): show all of it
    for node in ast.walk(tree):
        line = f"{where} {getattr(node, 'lineno', 0)}"
        if id(node) in shells:
            hazards.append(Hazard(line, _shown(node, source), IPYTHON))
        elif isinstance(node, ast.Call) and not _is_get_ipython(node):
            reason = call_hazard(node, ns, aliases)
            if reason:
                hazards.append(Hazard(line, _shown(node, source), reason))
        elif isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign | ast.Delete):
            hazards += [Hazard(line, _shown(t, source), STATE) for t in _module_targets(node, ns)]
        elif _reads_environ(node, ns, aliases):
            hazards.append(Hazard(line, _shown(node, source), ENVIRONMENT))
        elif _is_url(node):
            hazards.append(Hazard(line, repr(_short(node.value)), NETWORK))  # type: ignore[attr-defined]
    hazards.sort(key=lambda h: _line_number(h.where))
    return _unique(hazards)


def _ipython_calls(tree: ast.AST) -> set[int]:
    """``get_ipython().<method>(...)`` calls (IPython syntax after ``transform_cell``)."""
    return {
        id(node)
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and _is_get_ipython(node.func.value)
    }


def _is_get_ipython(node: ast.AST) -> bool:
    return isinstance(node, ast.Call) and dotted(node.func) == "get_ipython"


def function_source(fn: Any) -> tuple[ast.Module, str] | None:
    """A notebook function's source, parsed (IPython keeps each cell's text for ``inspect``);
    None when it is not available."""
    import textwrap

    try:
        source = textwrap.dedent(inspect.getsource(fn))
        return ast.parse(source), source
    except (OSError, TypeError, SyntaxError):
        return None


def scan_function(fn: Any, name: str, ns: Mapping[str, Any]) -> list[Hazard]:
    """The same scan over a notebook function's source; when the source is unavailable, its
    bytecode's names are matched instead (less precise)."""
    parsed = function_source(fn)
    if parsed is None:
        return _from_bytecode(fn, name)
    return scan_code(parsed[0], parsed[1], ns, where=f"{name}() line")


def qualified(callee: str, ns: Mapping[str, Any]) -> str:
    """``np.random.rand`` -> ``numpy.random.rand``: the module path of what ``callee`` names in
    ``ns`` (the global generators' bound methods count as their module's functions); ""
    when the head is not in ``ns`` (or a builtin)."""
    head, *rest = callee.split(".")
    obj = ns[head] if head in ns else getattr(builtins, head, None)
    if obj is None:
        return ""
    text = ".".join([obj.__name__, *rest]) if _is_module(obj) else ""
    for part in rest:
        try:
            if _is_module(obj) or isinstance(obj, type):
                obj = getattr(obj, part)
            else:  # an instance: never run its properties or __getattr__
                obj = inspect.getattr_static(type(obj), part)
        except Exception:
            return text
    return _object_name(obj) or text


def _object_name(obj: Any) -> str:
    owner = getattr(obj, "__self__", None)
    name = getattr(obj, "__name__", "")
    for module, attr, public in _GLOBAL_INSTANCES:
        loaded = sys.modules.get(module)
        if loaded is not None and owner is not None and owner is getattr(loaded, attr, None):
            return f"{public}.{name}"
    if isinstance(owner, type):
        return f"{owner.__module__}.{owner.__qualname__}.{name}"
    if isinstance(obj, staticmethod | classmethod):
        obj = obj.__func__
    if _is_module(obj):
        return obj.__name__
    where: object = getattr(obj, "__module__", None)
    qualname: object = getattr(obj, "__qualname__", None)
    if isinstance(where, str) and isinstance(qualname, str):
        return f"{where}.{qualname}"
    return ""


def _is_module(obj: Any) -> bool:
    return isinstance(obj, ModuleType)


def _reads_environ(node: ast.AST, ns: Mapping[str, Any], aliases: dict[str, str]) -> bool:
    """``os.environ["KEY"]`` read (its value is not in the key)."""
    if not (isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load)):
        return False
    target = dotted(node.value)
    head, _, rest = target.partition(".")
    module = aliases.get(head) or getattr(ns.get(head), "__name__", "")
    return f"{module}.{rest}" == "os.environ"


def _is_url(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and node.value.startswith(_URL_SCHEMES)
    )


def classify(name: str) -> str:
    """What a qualified callee does to the cache ("" when nothing)."""
    for pattern, reason in HAZARDS:
        if fnmatch.fnmatchcase(name, pattern):
            return reason
    return ""


def imports(tree: ast.AST) -> dict[str, str]:
    """Names the code's own imports bind -> the module path they stand for."""
    found: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                name = alias.asname or alias.name.partition(".")[0]
                found[name] = alias.name if alias.asname else name
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                if alias.name != "*":
                    found[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return found


def call_hazard(
    node: ast.Call, ns: Mapping[str, Any], aliases: dict[str, str] | None = None
) -> str:
    """What one call does to the cache ("" when nothing)."""
    callee = dotted(node.func)
    if not callee:
        return ""
    head, _, rest = callee.partition(".")
    if aliases and head in aliases:  # imported by the code itself: not in the namespace yet
        callee = ".".join(filter(None, (aliases[head], rest)))
        ns = {k: v for k, v in ns.items() if k != head}
    keywords = {k.arg for k in node.keywords if k.arg}
    short = callee.rpartition(".")[2]
    reason = classify(qualified(callee, ns)) or classify(callee)
    if reason:
        return reason
    if short in UNSEEDED_GENERATORS and not node.args and not keywords:
        return "makes a generator without a seed (a new random stream on every run)"
    if "random_state" not in keywords and short in SEEDED_FUNCTIONS:
        return f"without random_state {RANDOM}"
    owner = ns.get(callee.split(".")[0])
    if short in _SAMPLERS and "random_state" not in keywords and not _is_module(owner):
        return f"without random_state {RANDOM}"
    return ""


def _module_targets(node: ast.AST, ns: Mapping[str, Any]) -> list[ast.AST]:
    """``plt.rcParams["x"] = 1``, ``os.environ["K"] = v``, ``del np.thing``: module state."""
    found = []
    for target in getattr(node, "targets", None) or [getattr(node, "target", None)]:
        base = target
        while isinstance(base, ast.Attribute | ast.Subscript):
            base = base.value
        if base is not target and isinstance(base, ast.Name) and _is_module(ns.get(base.id)):
            found.append(target)
    return found


def _from_bytecode(fn: Any, name: str) -> list[Hazard]:
    from nbops.hashing.identity import _global_names

    found = []
    code = getattr(fn, "__code__", None)
    names = _global_names(code) if code is not None else set()
    for pattern, reason in HAZARDS:
        tail = pattern.rpartition(".")[2]
        if "*" not in tail and tail in names and pattern.split(".")[0] in names:
            found.append(Hazard(f"{name}()", pattern, f"{reason} (its source is not available)"))
    return _unique(found)


def _shown(node: ast.AST, source: str) -> str:
    text = ast.get_source_segment(source, node) or ast.unparse(node)
    return _short(" ".join(text.split()))


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _line_number(where: str) -> int:
    tail = where.rsplit(" ", 1)[-1]
    return int(tail) if tail.isdigit() else 0


def _unique(hazards: list[Hazard]) -> list[Hazard]:
    seen: set[str] = set()
    out = []
    for hazard in hazards:
        if str(hazard) not in seen:
            seen.add(str(hazard))
            out.append(hazard)
    return out
