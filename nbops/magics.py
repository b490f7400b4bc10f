"""IPython glue: the ``%%track`` cell magic and the ``%nbops`` line magic.

``%%track`` runs the cell exactly as IPython would (same namespace, same rich display of the
last expression, same exceptions), then hands the capture to the session. Importing this
module must stay cheap: no mlflow, dvc, ipywidgets, pandas or numpy here or in what it imports
at module level (``tests/unit/test_imports.py`` checks it).
"""

from __future__ import annotations

import shlex
import threading
from typing import Any

from IPython.core.error import UsageError as IPythonUsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from nbops.capture import CaptureOptions
from nbops.capture.execute import run_code
from nbops.display import Summary
from nbops.errors import NbopsError
from nbops.record import RunRecord
from nbops.session import Session


def _names(text: str | None) -> list[str]:
    return [n.strip() for n in (text or "").split(",") if n.strip()]


def _options(args: Any, auto_default: bool) -> CaptureOptions:
    """``%%track`` flags as capture options; ``--no-auto`` overrides ``[tool.nbops] auto``."""
    return CaptureOptions(
        name=args.name,
        experiment=args.experiment,
        params=_names(args.params),
        metrics=_names(args.metrics),
        data=_names(args.data),
        model=args.model,
        auto=auto_default and not args.no_auto,
        notebook=args.notebook,
        log_model=not args.no_model,
    )


@magics_class
class NbopsMagics(Magics):
    """``%%track`` and ``%nbops``; one :class:`Session` per shell."""

    shell: Any  # the InteractiveShell the magics are registered with (set by IPython)

    def __init__(self, shell: Any, session: Session | None = None) -> None:
        super().__init__(shell)
        self._session = session

    @property
    def session(self) -> Session:
        if self._session is None:
            from nbops.session import default_session

            self._session = default_session()
        return self._session

    @magic_arguments()
    @argument("--name", "-n", help="run name (default: a short record id)")
    @argument("--experiment", "-e", help="MLflow experiment (default: the notebook's stem)")
    @argument("--params", help="comma-separated variables to record as parameters")
    @argument("--metrics", help="comma-separated variables to record as metrics")
    @argument("--data", help="comma-separated variables to fingerprint as data")
    @argument("--model", help="the estimator variable to log as the run's model")
    @argument("--no-auto", action="store_true", help="record only what is named explicitly")
    @argument("--no-model", action="store_true", help="do not log a model")
    @argument("--notebook", help="the notebook's path, when nbops cannot find it")
    @argument(
        "--cache",
        nargs="?",
        const="on",
        choices=("on", "force"),
        help="skip the cell when nothing it reads changed, restoring what it left (=force: "
        "even when it reads the clock, the network or the global random state)",
    )
    @cell_magic
    def track(self, line: str, cell: str) -> Any:
        """Run the cell, then record its params, metrics, data fingerprints, code and context."""
        __tracebackhide__ = True
        args = parse_argstring(self.track, line)
        code = self.shell.transform_cell(cell)
        self._report_failures()
        try:
            options = _options(args, auto_default=self.session.config.auto)
            capture = self.session.capture(code, self.shell.user_ns, options, raw=cell)
            capture.begin()
        except Exception as exc:  # a broken [tool.nbops]: run the cell untracked, say why
            self._warn(f"nbops: not tracking this cell: {exc}")
            return self._run(code, cell)
        live = _start_live(self.shell, capture)  # the summary while the cell runs (nbops.live)
        self.session.check_state(capture, self.shell)
        try:
            if args.cache:
                from nbops.cache.cell import for_capture

                result = for_capture(self.session, capture, self.shell, args.cache == "force").run(
                    code,
                    lambda: self._run(code, cell, capture),
                    capture.scan,
                    capture.input_fingerprints,
                )
            else:
                result = self._run(code, cell, capture)
        except BaseException as exc:
            self._record(capture, exc, live)
            raise
        self._record(capture, None, live)
        return result

    def _run(self, code: str, raw: str, capture: Any = None) -> Any:
        __tracebackhide__ = True
        return run_code(self.shell, code, raw, capture)

    def _record(self, capture: Any, error: BaseException | None, live: Any = None) -> None:
        """Spool and queue the record, show the summary; never raises into the cell."""
        try:
            shown = live.stop() if live is not None else None  # the live summary's display
            from nbops.links import ui_address

            ui = ui_address(self.session.config)
            handle = _DisplaySlot(live=_updates_in_place(self.shell), ui=ui)
            record, entry = self.session.commit(capture, error, on_done=handle.done)
            handle.show(record, saved=entry is not None, existing=shown)
        except Exception as exc:  # last line of defence: the cell's result stands
            self._warn(f"nbops: this cell ran, but could not be recorded: {exc}")

    def _report_failures(self) -> None:
        """Say, under the next tracked cell, if a background write failed since the last one."""
        failures = self.session.earlier_failures() if self._session is not None else []
        if failures:
            reasons = "; ".join(sorted({f"{type(e).__name__}: {e}" for _, e in failures}))
            self._warn(
                f"nbops: {len(failures)} earlier run(s) could not be written to MLflow "
                f"({reasons}). They are kept in .nbops/spool; fix the store, then run "
                "`%nbops sync` or `nbops sync`."
            )

    @staticmethod
    def _warn(message: str) -> None:
        import warnings

        warnings.warn(message, RuntimeWarning, stacklevel=2)

    @line_magic
    def nbops(self, line: str) -> Any:
        """``%nbops wait | sync | runs [EXPERIMENT] | show RUN | diff RUN_A RUN_B | config |
        promotion MODEL | level [PATH] | monitor [PIPELINE|MODEL] | check | cache ls|clear
        [KEY...]``."""
        from nbops import commands

        words = shlex.split(line)
        if not words:
            raise IPythonUsageError(commands.MAGIC_HELP)
        try:
            if words[0] in ("runs", "promotion"):  # widgets in a kernel (nbops.widgets.magic)
                from nbops.widgets.magic import widget_magic

                if widget_magic(self.session, self.shell, words):
                    return None
            if words[0] == "monitor" and len(words) <= 2:  # the report: HTML in Jupyter
                from IPython.display import display

                display(commands.monitor(*words[1:]))
                return None
            return commands.run_magic(self.session, words)
        except NbopsError as exc:
            raise IPythonUsageError(str(exc)) from None


class _DisplaySlot:
    """The summary under the cell, updated in place when the background write finishes."""

    def __init__(self, live: bool, ui: str = "") -> None:
        self.live = live  # a terminal cannot update output in place: print only failures
        self.ui = ui  # MLflow's UI: the saved summary links to the run
        self.lock = threading.Lock()
        self.handle: Any = None
        self.outcome: tuple[RunRecord, BaseException | None] | None = None

    def show(self, record: RunRecord, saved: bool, existing: Any = None) -> None:
        """Display the summary, or turn ``existing`` (the live summary) into it."""
        from IPython.display import display

        with self.lock:
            if self.outcome is not None:  # already written (synchronous mode): final state
                summary = _summary(*self.outcome, spooled=saved, ui=self.ui)
            else:
                summary = Summary(record, "saving" if saved else "lost", "")
            if existing is not None:
                existing.update(summary)
                self.handle = existing
            else:
                self.handle = display(summary, display_id=True)

    def done(self, record: RunRecord, error: BaseException | None) -> None:
        with self.lock:
            self.outcome = (record, error)
            if self.handle is None:
                return
            if self.live:
                self.handle.update(_summary(record, error, ui=self.ui))
            elif error is not None:
                print(repr(_summary(record, error)))


def _summary(
    record: RunRecord, error: BaseException | None, spooled: bool = True, ui: str = ""
) -> Summary:
    if error is None:
        return Summary(record, "saved", ui=ui)
    if not spooled:
        return Summary(record, "lost", f"MLflow write failed: {error}")
    return Summary(record, "local", f"MLflow write failed: {error}")


def flush_on_kernel_shutdown(shell: Any) -> None:
    """Deliver pending runs when a Jupyter client shuts the kernel down.

    papermill/nbclient shut a kernel down right after its last cell; ipykernel then stops its
    loops and the process ends before interpreter exit hooks can finish a first MLflow write
    (~3 s: import and schema set-up). jupyter_client sends SIGTERM 2.5 s after its shutdown
    request, so flushing in the kernel's own ``do_shutdown`` lands steady-state writes in time;
    a record that still misses it stays in the spool, and the next ``nbops`` command that reads
    the store (or ``nbops sync``) delivers it.
    """
    kernel: Any = getattr(shell, "kernel", None)
    original = getattr(kernel, "do_shutdown", None)
    if original is None or getattr(original, "_nbops_flushes", False):
        return

    def do_shutdown(restart: bool) -> Any:
        from nbops.session import default_session

        if default_session.cache_info().currsize:
            default_session().flush(timeout=2.0)  # SIGTERM comes at 2.5 s
        return original(restart)

    do_shutdown._nbops_flushes = True  # type: ignore[attr-defined]
    kernel.do_shutdown = do_shutdown


def watch_state(shell: Any) -> None:
    """Watch executions for hidden state (``[tool.nbops] state_check``, on by default)."""
    from nbops.session import default_session

    try:
        if not default_session().config.state_check:
            return
        from nbops.capture.state import watch

        watch(shell)
    except Exception:  # a broken configuration is reported at the first tracked cell
        return


def warm_session(shell: Any) -> None:
    """Start what the first tracked cell would otherwise wait for (the notebook lookup; in a
    headless kernel also the store). A broken configuration is reported at the first
    tracked cell instead."""
    from nbops.session import default_session

    try:
        default_session().warm(shell)
    except Exception:
        return


def _start_live(shell: Any, capture: Any) -> Any:
    """A live summary for kernels that update outputs in place; None elsewhere or on error."""
    if not _updates_in_place(shell):
        return None
    try:
        from nbops.live import LiveSummary

        return LiveSummary(capture).start()
    except Exception:  # the live view is optional; the cell runs regardless
        return None


def _updates_in_place(shell: Any) -> bool:
    """Kernels (Jupyter, VS Code) update a displayed output by id; a terminal cannot."""
    return type(shell).__name__ != "TerminalInteractiveShell" and hasattr(shell, "kernel")
