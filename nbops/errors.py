"""The one exception tree of nbops.

Every error a user can cause is an :class:`NbopsError` whose message says what went wrong,
where (cell, tag, file, run), and how to fix it. The CLI maps each class to its own exit code.
Errors carry their fields as keyword arguments so they pickle across the subprocesses that run
pipeline steps (``BaseException.__reduce__`` only replays positional ``args``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar


class NbopsError(Exception):
    """Root of every nbops error; ``fix`` tells the user what to do next."""

    exit_code: ClassVar[int] = 1
    message: str
    fix: str
    fields: dict[str, Any]  # every keyword given, also set as attributes (declared per class)

    def __init__(self, message: str, *, fix: str = "", **fields: Any) -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix
        self.fields = fields
        for key, value in fields.items():
            setattr(self, key, value)

    def __str__(self) -> str:
        return f"{self.message}\n  fix: {self.fix}" if self.fix else self.message

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.message, self.fix, self.fields))


def _rebuild(cls: type[NbopsError], message: str, fix: str, fields: dict[str, Any]) -> NbopsError:
    return cls(message, fix=fix, **fields)


class ConfigError(NbopsError):
    """A setting in ``[tool.nbops]`` or an ``NBOPS_*`` variable is invalid (fields: ``key``,
    ``setting``, ``path``)."""

    exit_code = 2
    key: str
    setting: str
    path: str


class UsageError(NbopsError):
    """A command or magic was called with arguments that cannot work (fields, when they
    help: ``path``, ``model``, ``alias``, ``stage``)."""

    exit_code = 2
    path: str
    model: str
    alias: str
    stage: str


class RunNotFoundError(NbopsError):
    """A run id, prefix or name matched no run (or more than one) (field: ``ref``)."""

    exit_code = 3
    ref: str


class StoreError(NbopsError):
    """The tracking store (MLflow) could not be read or written.

    ``kind`` says what a failed write means for the records still waiting: ``"store"`` (down,
    locked or unreachable: later records would fail too), ``"record"`` (this record waits for
    the user, e.g. its experiment is deleted) or ``"refused"`` (MLflow refuses its content for
    good: it is quarantined rather than retried).
    """

    exit_code = 4
    kind: str = "store"
    uri: str
    model: str
    experiment: str


class NoStoreError(StoreError):
    """A read-only command found no tracking store: nothing was recorded yet (exit code 4,
    like every store problem; ``nbops runs`` prints it as a plain message)."""


class NotebookError(NbopsError):
    """A notebook cannot be read or its tags/cells are not valid for nbops (fields: ``path``
    the notebook, ``cell`` its number and first line, ``step``, ``file``, and what the check
    was about: ``variable``, ``param``, ``tag``...)."""

    exit_code = 5
    path: str
    cell: str
    step: str
    file: str


class FingerprintError(NbopsError):
    """An object cannot be fingerprinted deterministically (fields: ``obj_type``, ``reason``)."""

    exit_code = 6
    obj_type: str
    reason: str


class RegistryError(NbopsError):
    """A registered model, version or alias needed for a registry change does not exist
    (fields: ``model``, ``version``, ``alias``)."""

    exit_code = 7
    model: str
    version: str | int
    alias: str


class DataValidationError(NbopsError):
    """New data breaks the pipeline's data contract (schema skew): the pipeline stops before
    training (fields: ``file``, ``columns``, ``report``)."""

    exit_code = 8
    file: str
    columns: list[str]
    report: str


class BusyError(NbopsError):
    """Another process is running the same pipeline (fields: ``pid``, ``started``): nothing
    was run or recorded."""

    exit_code = 9
    pid: int
    started: float


class ServingError(NbopsError):
    """The model server could not be started, failed its health check or its smoke test, or
    a deployment could not be made (fields: ``model``, ``version``)."""

    exit_code = 10
    model: str
    version: str | int | None


def causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc``, then what caused it, and so on: MLflow wraps the driver's error, and nbops
    may wrap MLflow's, so a check for a kind of failure looks at every link."""
    seen: BaseException | None = exc
    while seen is not None:
        yield seen
        seen = seen.__cause__ or seen.__context__
