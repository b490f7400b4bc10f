"""What a value *is*, for a cell's cache key: equal identities mean "the cell would compute the
same thing from it".

- data (DataFrame, Series, Index, ndarray) and plain values: their content fingerprint;
- functions and classes defined in the notebook (module ``__main__``): their code (bytecode,
  constants, names, defaults, closures; not line numbers or comments), and the globals that
  code reads, recursively, so editing a helper an earlier cell defined changes the key;
- modules, and functions or classes imported from them: their name, plus the version of the
  package that provides them (or the md5 of a local module's file), collected in
  :attr:`Identities.modules` / :attr:`Identities.files`;
- anything else (a fitted estimator, a generator's state): the bytes of its pickle, with
  notebook functions and classes inside it replaced by their code identity, arrays and frames
  by their content fingerprint (a fitted tree's node array has uninitialised padding bytes,
  which its pickle carries). An object that cannot be pickled has no identity
  (:attr:`problems`).
"""

from __future__ import annotations

import builtins
import functools
import io
import pickle
import sys
from collections.abc import Mapping
from types import BuiltinFunctionType, CodeType, FunctionType, MethodType, ModuleType
from typing import Any

import xxhash

from nbops.errors import FingerprintError
from nbops.hashing.frames import fingerprint, is_data
from nbops.hashing.values import canon

NOTEBOOK_MODULE = "__main__"  # IPython's, papermill's and a script's namespace
_PLAIN = (type(None), bool, int, float, complex, str, bytes)
_CLASS_SKIP = frozenset({"__dict__", "__weakref__", "__module__", "__qualname__", "__doc__"})
# names a cell may read that are the kernel's history, not values
HISTORY_NAMES = frozenset({"In", "Out", "_ih", "_oh", "_dh"})


class Identities:
    """Identities of the values one key reads, memoised by object; notebook functions reached
    through them are remembered (their code is scanned for hazards and files too)."""

    def __init__(self, ns: Mapping[str, Any], known: Mapping[str, str] | None = None) -> None:
        self.ns = ns
        self.known = dict(known or {})  # name -> fingerprint computed by the capture already
        self.modules: set[str] = set()  # top-level modules whose package versions count
        self.local_modules: dict[str, str] = {}  # module name -> its file (not a package)
        self.functions: dict[str, FunctionType] = {}  # notebook functions reached, by name
        self.reached: list[str] = []  # global names that notebook code reads
        self.problems: dict[str, str] = {}  # name -> why it has no identity
        self._memo: dict[int, str] = {}
        self._keep: list[Any] = []  # keeps memoised objects alive (ids stay unique)

    def of_name(self, name: str) -> str | None:
        """The identity of ``ns[name]``; None (and a problem) when it has none."""
        if name in self.known:
            self._data_modules(self.ns.get(name))
            return self.known[name]
        if name not in self.ns:
            return "builtin" if hasattr(builtins, name) else "undefined"
        try:
            return self.value(self.ns[name], name)
        except _NoIdentity as exc:
            self.problems[name] = str(exc)
            return None

    def value(self, obj: Any, name: str = "") -> str:
        """The identity of one object; raises :class:`_NoIdentity`."""
        key = id(obj)
        if key in self._memo:
            return self._memo[key]
        self._memo[key] = "cycle"  # a class whose methods read the class itself
        self._keep.append(obj)
        ident = self._compute(obj, name)
        self._memo[key] = ident
        return ident

    def _compute(self, obj: Any, name: str) -> str:
        if isinstance(obj, _PLAIN):
            return "v:" + _digest(canon(obj) if not isinstance(obj, complex) else repr(obj))
        if isinstance(obj, ModuleType):
            self._module(obj.__name__)
            return f"module:{obj.__name__}"
        if is_data(obj):
            self._data_modules(obj)
            return fingerprint(obj)
        if isinstance(obj, FunctionType | type) and from_notebook(obj):
            return self._notebook_object(obj, name)
        if isinstance(obj, FunctionType | BuiltinFunctionType | type | MethodType):
            return self._reference(obj)
        try:
            return fingerprint(obj)  # containers of plain values, dates, numpy scalars
        except FingerprintError:
            return self._pickled(obj)

    def _data_modules(self, obj: Any) -> None:
        """A frame or array is computed on by its library, and by numpy under pandas."""
        self._module(type(obj).__module__)
        self.modules.add("numpy")

    def _module(self, module: str) -> None:
        top = module.partition(".")[0]
        loaded = sys.modules.get(module)
        path = getattr(loaded, "__file__", None)
        if top == NOTEBOOK_MODULE:
            return
        if path and _is_local(path):
            self.local_modules[module] = path
        self.modules.add(top)

    def _reference(self, obj: Any) -> str:
        """A function, class or method from a package: by name (its version is in the key)."""
        if isinstance(obj, MethodType):
            return f"method:{self.value(obj.__self__)}:{obj.__func__.__name__}"
        module = getattr(obj, "__module__", None) or ""
        self._module(module)
        return f"ref:{module}:{getattr(obj, '__qualname__', repr(obj))}"

    def _notebook_object(self, obj: FunctionType | type, name: str) -> str:
        if isinstance(obj, type):
            return "class:" + _digest(self._class_parts(obj))
        if name:
            self.functions[name] = obj
        else:
            self.functions.setdefault(obj.__qualname__, obj)
        return "function:" + _digest(self._function_parts(obj))

    def _function_parts(self, fn: FunctionType) -> bytes:
        out = bytearray(code_identity(fn.__code__).encode())
        for value in (*(fn.__defaults__ or ()), *(fn.__kwdefaults__ or {}).items()):
            out += self.value(value).encode()
        for cell in fn.__closure__ or ():
            try:
                out += self.value(cell.cell_contents).encode()
            except ValueError:  # an empty cell (a name assigned later)
                out += b"<empty>"
        for global_name in sorted(_global_names(fn.__code__)):
            if global_name in self.ns and global_name not in self.reached:
                self.reached.append(global_name)
        return bytes(out)

    def _class_parts(self, cls: type) -> bytes:
        out = bytearray(cls.__qualname__.encode())
        for base in cls.__bases__:
            out += self.value(base).encode()
        for attr, member in sorted(vars(cls).items()):
            if attr in _CLASS_SKIP:
                continue
            inner = getattr(member, "__func__", member)  # staticmethod / classmethod
            if isinstance(member, property):
                parts = (member.fget, member.fset, member.fdel)
                text = ",".join(self.value(p) for p in parts if p is not None)
            else:
                text = self.value(inner)
            out += f"{attr}={text};".encode()
        return bytes(out)

    def _pickled(self, obj: Any) -> str:
        """The hash of ``obj``'s pickle, without the memo (so an object graph sharing one
        string or array in two places hashes like a copy of it that does not); objects with
        reference cycles need the memo and are pickled with it."""
        try:
            return self._pickle_hash(obj, fast=True)
        except _Cyclic:
            return self._pickle_hash(obj, fast=False)

    def _pickle_hash(self, obj: Any, fast: bool) -> str:
        hasher = xxhash.xxh3_128()
        buffers: list[pickle.PickleBuffer] = []
        sink = io.BytesIO()
        pickler = _IdentityPickler(sink, self, buffers.append)
        pickler.fast = fast
        try:
            pickler.dump(obj)
        except _NoIdentity:
            raise
        except (RecursionError, ValueError) as exc:
            if fast and (isinstance(exc, RecursionError) or "cyclic" in str(exc)):
                raise _Cyclic from None
            raise _NoIdentity(f"a {type(obj).__name__} that cannot be pickled ({exc})") from None
        except Exception as exc:
            kind = type(obj).__name__
            reason = f"a {kind} that cannot be pickled ({type(exc).__name__}: {exc})"
            raise _NoIdentity(reason) from None
        hasher.update(sink.getbuffer())
        for buffer in buffers:
            hasher.update(buffer.raw())
        return "pickle:" + hasher.hexdigest()


class _NoIdentity(Exception):
    """A value nbops cannot identify (so a cell reading it cannot be cached)."""


class _Cyclic(Exception):
    """Pickling without the memo met a reference cycle."""


class _IdentityPickler(pickle.Pickler):
    """Pickles for hashing: notebook functions/classes become their code identity, modules
    their name; every package a pickled class comes from counts in the key."""

    def __init__(self, sink: io.BytesIO, owner: Identities, on_buffer: Any) -> None:
        super().__init__(sink, protocol=5, buffer_callback=on_buffer)
        self.owner = owner

    def reducer_override(self, obj: Any) -> Any:
        if is_data(obj):  # by content: a structured array's padding bytes are not content
            return (str, (fingerprint(obj),))
        if isinstance(obj, ModuleType):
            self.owner._module(obj.__name__)
            return (str, (f"module:{obj.__name__}",))
        if isinstance(obj, FunctionType | type):
            if from_notebook(obj):
                return (str, (self.owner.value(obj),))
            self.owner._module(getattr(obj, "__module__", "") or "")
        return NotImplemented


def from_notebook(obj: Any) -> bool:
    """Defined by a cell (or a script run as ``__main__``), not imported from a module."""
    return getattr(obj, "__module__", None) == NOTEBOOK_MODULE


def code_identity(code: CodeType) -> str:
    """The bytecode, constants and names of ``code`` and the code nested in it: not its file
    name or line numbers, so the same source in another cell or kernel is the same code."""
    hasher = xxhash.xxh3_128()
    _hash_code(code, hasher)
    return hasher.hexdigest()


def _hash_code(code: CodeType, hasher: Any) -> None:
    head = (
        code.co_name,
        code.co_argcount,
        code.co_posonlyargcount,
        code.co_kwonlyargcount,
        code.co_flags,
        code.co_names,
        code.co_varnames,
        code.co_freevars,
        code.co_cellvars,
    )
    hasher.update(canon(head))
    hasher.update(code.co_code)
    for const in code.co_consts:
        if isinstance(const, CodeType):
            _hash_code(const, hasher)
            continue
        try:
            hasher.update(canon(const))
        except FingerprintError:  # Ellipsis and other odd constants
            hasher.update(repr(const).encode())


def _global_names(code: CodeType) -> set[str]:
    """Names ``code`` (and code nested in it) may read as globals or attributes."""
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, CodeType):
            names |= _global_names(const)
    return names


def _is_local(path: str) -> bool:
    """A module file that no installed package provides (the project's own code)."""
    return "site-packages" not in path and "dist-packages" not in path and not _stdlib(path)


@functools.cache
def _stdlib_folder() -> str:
    import sysconfig

    return sysconfig.get_paths()["stdlib"]


def _stdlib(path: str) -> bool:
    return path.startswith(_stdlib_folder())


def _digest(data: bytes | str) -> str:
    return xxhash.xxh3_128(data.encode() if isinstance(data, str) else data).hexdigest()
