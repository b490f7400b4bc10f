"""What one cell's code reads from and binds in the notebook's globals, narrowed with
:mod:`symtable` (function locals, comprehension variables and loop/with/except targets are not
reads of globals), and what it changes in place. Stdlib only."""

from __future__ import annotations

import ast
import symtable

from nbops.capture.scan import Call, scan_cell
from nbops.capture.vocab import FIT_METHODS
from nbops.notebook.folding import iterated

__all__ = ["mutated", "ordered_reads", "scopes"]


def scopes(table: symtable.SymbolTable) -> tuple[set[str], dict[str, str]]:
    """Names the cell reads from globals (at top level or in any nested scope) and binds."""
    reads: set[str] = set()
    binds: dict[str, str] = {}
    for sym in table.get_symbols():
        name = sym.get_name()
        if sym.is_referenced():
            reads.add(name)
        if sym.is_imported():
            binds[name] = "import"
        elif sym.is_namespace():
            binds[name] = "def"
        elif sym.is_assigned():
            binds[name] = "value"
    stack = list(table.get_children())
    while stack:
        child = stack.pop()
        stack.extend(child.get_children())
        for sym in child.get_symbols():
            if sym.is_global() and sym.is_referenced():
                reads.add(sym.get_name())
            if sym.is_declared_global() and sym.is_assigned():
                binds.setdefault(sym.get_name(), "value")
    return reads, binds


def ordered_reads(tree: ast.Module, global_reads: set[str]) -> list[str]:
    """Globals read before the cell binds them, statement by statement."""
    bound: set[str] = set()
    reads: list[str] = []
    for stmt in tree.body:
        scan = scan_cell(ast.unparse(stmt))
        fresh = (scan.free & global_reads) - bound - _bound_first(stmt)
        reads.extend(sorted(fresh - set(reads)))
        bound |= scan.stored
    return reads


def _bound_first(stmt: ast.stmt) -> set[str]:
    """Names a compound statement binds before its body reads them (loop/with/except targets)."""
    if isinstance(stmt, ast.For | ast.AsyncFor):
        return _names(stmt.target) - _names(stmt.iter)
    if isinstance(stmt, ast.With | ast.AsyncWith):
        bound = {n for item in stmt.items if item.optional_vars for n in _names(item.optional_vars)}
        return bound - {n for item in stmt.items for n in _names(item.context_expr)}
    if isinstance(stmt, ast.Try | ast.TryStar):
        return {handler.name for handler in stmt.handlers if handler.name}
    return set()


def _names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def mutated(tree: ast.Module, fits: dict[str, list[str | None]], calls: list[Call]) -> set[str]:
    """Globals changed in place at top level: ``x[k] = v``, ``x.a = v``, ``x.fit()``, inplace,
    and the collection a loop fits its items from (``for m in models: m.fit(X, y)``)."""
    names = set(fits)
    names |= {c.callee.split(".")[0] for c in calls if "inplace" in c.keywords and "." in c.callee}
    for stmt in tree.body:
        for target in getattr(stmt, "targets", None) or [getattr(stmt, "target", None)]:
            while isinstance(target, ast.Subscript | ast.Attribute):
                target = target.value
                if isinstance(target, ast.Name):
                    names.add(target.id)
        if isinstance(stmt, ast.For) and _fits_loop_items(stmt):
            names |= set(iterated(stmt.iter))
    return names


def _fits_loop_items(loop: ast.For) -> bool:
    """Whether the loop body calls ``.fit(...)`` (or the like) on one of the loop's targets."""
    targets = _names(loop.target)
    for node in ast.walk(ast.Module(body=loop.body, type_ignores=[])):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in FIT_METHODS
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id in targets
        ):
            return True
    return False
