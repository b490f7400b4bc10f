"""Capture: turning one execution of some code into a :class:`~nbops.record.RunRecord`.

The one capture path shared by ``%%track``, ``with nbops.track()`` and pipeline steps::

    capture = Capture(code, namespace, options, root=..., file_cache=...)
    capture.begin()                       # before the code runs: scan, snapshot inputs
    ... run the code ...
    record, payload = capture.finish(exc)  # after: params, metrics, data, model, warnings

Nothing here may break the user's code: each part of ``finish`` that fails becomes a warning
in the record instead of an exception.
"""

from __future__ import annotations

import contextvars
import hashlib
import math
import time
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nbops.capture import namespace as nsp
from nbops.capture import params as lean
from nbops.capture.assigned import assigned_names, failing_line
from nbops.capture.collector import ACTIVE, Collector
from nbops.capture.describe import first_comment
from nbops.capture.redact import redact_code, redact_record, secret_path
from nbops.capture.scan import CellScan, scan_cell
from nbops.capture.seeds import seed_warnings
from nbops.capture.usage import set_contexts
from nbops.hashing.files import DEFAULT_HASH_MAX_MB, FileHashCache
from nbops.record import ModelRef, RunRecord, Status


@dataclass
class CaptureOptions:
    """What the user asked for (``%%track`` flags / ``nbops.track()`` arguments)."""

    name: str | None = None
    experiment: str | None = None
    params: list[str] = field(default_factory=list)
    metrics: list[str] = field(default_factory=list)
    data: list[str] = field(default_factory=list)
    model: str | None = None
    auto: bool = True
    notebook: str | None = None
    log_model: bool = True
    source: str = "cell"
    tags: dict[str, str] = field(default_factory=dict)


class Capture:
    """One tracked execution: ``begin()`` before the code runs, ``finish()`` after."""

    def __init__(
        self,
        code: str,
        ns: MutableMapping[str, Any],
        options: CaptureOptions,
        *,
        root: Path,
        file_cache: FileHashCache | None = None,
        raw_code: str | None = None,
        hash_max_mb: float = DEFAULT_HASH_MAX_MB,
    ) -> None:
        self.ns = ns
        self.options = options
        self.root = root
        self.file_cache = file_cache
        self.hash_limit = _hash_limit(hash_max_mb)  # bigger files: not hashed on this thread
        self.scan = scan_cell(code)
        raw = code if raw_code is None else raw_code
        source = redact_code(raw, python=code)  # no literal secrets
        self.record = RunRecord(
            name=options.name,
            experiment=options.experiment,
            code=source,
            code_hash="sha256:" + hashlib.sha256(source.encode()).hexdigest(),
            source=options.source,
            tags=dict(options.tags),
        )
        self.record.description = first_comment(raw)
        self.collector = Collector()
        self._before = nsp.Before()
        self._token: contextvars.Token[Collector | None] | None = None
        self._t0 = 0.0
        # Where the code runs (file name, first line), so that a cell that raised records
        # only what it assigned before the line that raised (see nbops.capture.assigned)
        self.code_file: tuple[str, int] | None = None
        self._assigned: set[str] | None = None  # None: the code ran to its end

    def begin(self) -> None:
        """Snapshot inputs; start the clock; route ``nbops.log_*`` calls here."""
        scan, extra = self._looked_at(), self.options.data
        self._guard("inputs", lambda: setattr(self, "_before", nsp.snapshot(self.ns, scan, extra)))
        self._token = ACTIVE.set(self.collector)
        self.record.start = time.time()
        self._t0 = time.perf_counter()

    def finish(self, error: BaseException | None = None) -> tuple[RunRecord, dict | None]:
        """Build the record after the code ran (or raised ``error``); returns (record, payload)."""
        record = self.record
        record.end = record.start + (time.perf_counter() - self._t0)
        if self._token is not None:
            ACTIVE.reset(self._token)
            self._token = None
        record.status, record.error = _status(error)
        payload = None
        if error is not None:
            self._guard("what the code assigned", lambda: self._what_ran(error))
        if self.options.auto:
            self._guard("parameters", self._auto_params)
            self._guard("metrics", lambda: record.metrics.update(self._metrics()))
        self._guard("data", self._data)
        self._guard("explicit values", self._explicit)
        if self.options.auto:  # a literal and the estimator setting it feeds: one param
            self._guard("parameters", self._merge_fed)
        if error is None and self.options.log_model:
            payload = self._guard("model", self._model)
        redact_record(record, code=False)  # params, tags, error, warnings (code: above)
        return record, payload

    @property
    def input_fingerprints(self) -> dict[str, str]:
        """The content fingerprints of the data the cell reads, taken by :meth:`begin`."""
        return {name: ref.fingerprint for name, ref in self._before.data.items() if ref.fingerprint}

    def _looked_at(self) -> CellScan:
        """What data inference reads: the scan, or nothing with ``--no-auto`` (only ``--data``)."""
        return self.scan if self.options.auto else CellScan()

    def _guard(self, what: str, fn: Any) -> Any:
        try:
            return fn()
        except Exception as exc:  # capture must never break the cell
            self.record.warnings.append(
                f"nbops could not record {what}: {type(exc).__name__}: {exc}"
            )
            return None

    def _what_ran(self, error: BaseException) -> None:
        """The names a raising cell had assigned (its params and metrics are only those)."""
        line = failing_line(error, *self.code_file) if self.code_file else None
        self._assigned = assigned_names(self.scan, self.ns, self._before.ids, line)

    def _ran(self, name: str) -> bool:
        return self._assigned is None or name in self._assigned

    def _metrics(self) -> dict[str, float]:
        return {k: v for k, v in nsp.metrics(self.ns, self.scan).items() if self._ran(k)}

    def _merge_fed(self) -> None:
        self.record.params = lean.merge_fed(self.record.params, self.scan.named_settings)

    def _auto_params(self) -> None:
        record, scan = self.record, self.scan
        record.params.update({k: v for k, v in scan.literals.items() if self._ran(k)})
        estimators = nsp.estimator_names(self.ns, scan)
        for name in estimators:
            est = self.ns[name]
            record.estimators[name] = {"class": type(est).__name__, "params": lean.settings(est)}
            record.params.update(lean.lean_params(name, est, scan.named_settings.get(name, {})))
        warnings = seed_warnings(self.ns, scan, estimators, record.code)
        record.warnings.extend(warnings)

    def _data(self) -> None:
        before, extra = self._before, self.options.data
        outputs = nsp.changed_data(self.ns, self._looked_at(), before, extra)
        if not self.options.auto:
            outputs = [d for d in outputs if d.name in extra]
        files = (
            nsp.file_refs(before, self.root, self.file_cache, self.hash_limit)
            if self.options.auto
            else []
        )
        self.record.data = [*before.data.values(), *outputs, *files]
        set_contexts(self.record.data, self.scan, self.ns)
        for ref in outputs:
            path = self.scan.sources.get(ref.name)
            if path:
                ref.source = nsp.relative_name(path, self.root)
        for ref in self.record.data:
            if ref.fingerprint is None and ref.note:
                self.record.warnings.append(f"{ref.name}: not fingerprinted ({ref.note})")

    def _explicit(self) -> None:
        record, ns = self.record, self.ns
        for name in self.options.params:
            if name in ns:
                record.params[name] = nsp.plain_value(ns[name])
            else:
                record.warnings.append(f"--params {name}: no variable named {name!r}")
        for name in self.options.metrics:
            number = nsp.as_number(ns.get(name))
            if not self._ran(name):
                record.warnings.append(f"--metrics {name}: not assigned before the code raised")
            elif number is None:
                kind = type(ns.get(name)).__name__ if name in ns else "undefined"
                record.warnings.append(f"--metrics {name}: {kind}, not a number; not recorded")
            else:
                record.metrics[name] = number
        record.params.update(self.collector.params)
        record.metrics.update(self.collector.metrics)
        record.metric_history.update(self.collector.history)
        record.tags.update(self.collector.tags)

    def _model(self) -> dict | None:
        explicit = self.options.model
        var, warning = nsp.model_choice(self.ns, self.scan, explicit)
        if warning:
            self.record.warnings.append(warning)
        if var is None or (not explicit and not self.options.auto):
            return None
        est = self.ns[var]
        secret = _secret_param(est)
        if secret:
            self.record.warnings.append(
                f"model {var} not logged: its parameter {secret!r} holds a secret, which the "
                "pickled model would carry; let the estimator read it from the environment "
                "where it runs, or use --no-model"
            )
            return None
        self.record.model = ModelRef(variable=var, flavor="sklearn", class_name=type(est).__name__)
        return {"model": est, "input_example": nsp.input_example(self.ns, self.scan, var)}


def _hash_limit(mb: float) -> int | None:
    """Bytes from ``hash_max_mb``: ``inf`` is no cap, a negative size 0; NaN the default."""
    if math.isnan(mb):
        mb = DEFAULT_HASH_MAX_MB
    if mb == math.inf:
        return None
    return int(max(mb, 0.0) * 2**20)


def _secret_param(est: Any) -> str:
    """The first parameter of ``est`` (nested ones too) that holds a secret, or ""."""
    try:
        params = est.get_params(deep=True)
    except Exception:
        return ""
    return next((str(k) for k, v in params.items() if secret_path(v, str(k))), "")


def _status(error: BaseException | None) -> tuple[Status, str | None]:
    if error is None:
        return "FINISHED", None
    status: Status = "KILLED" if isinstance(error, KeyboardInterrupt) else "FAILED"
    return status, f"{type(error).__name__}: {error}"
