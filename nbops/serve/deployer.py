"""Follow the alias: deploy whichever version holds it, without dropping a request.

A watcher thread asks the registry every ``poll`` seconds (and at once on ``/nbops/reload``)
which version holds the alias. A new one is deployed blue-green: its own ``mlflow models serve``
is started beside the current one, health-checked, smoke-tested with its gate holdout
(:mod:`nbops.serve.smoke`), and only then routed to; the old one is stopped once its last
request is answered, unless it is now the ``previous`` alias (a promotion): it then stays up
as the warm standby, so a rollback switches back at once instead of starting a server (one
more server's memory; ``--no-standby`` saves it). A version that fails any of this never
receives traffic: the current one keeps serving, the failure is printed, kept in
``/nbops/status`` and recorded, and that version is not tried again until the alias moves or
a reload asks. A backend that dies is restarted.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any

from nbops.errors import NbopsError, ServingError
from nbops.serve import reference as ref
from nbops.serve import wire
from nbops.serve.backend import Backend
from nbops.serve.router import Router
from nbops.serve.smoke import smoke_test
from nbops.serve.target import Target, append_deployment

_FIX = "check the model loads: mlflow models predict -m models:/NAME/VERSION --env-manager local"


class Deployer:
    def __init__(
        self,
        target: Target,
        router: Router,
        echo: Callable[[str], None],
        on_switch: Callable[[int], None] = lambda version: None,
        standby: bool = True,
    ) -> None:
        self.target, self.router, self.echo, self.on_switch = target, router, echo, on_switch
        self.keep_standby = standby
        self.standby: Backend | None = None  # the replaced champion, warm for a rollback
        self.lock = threading.Lock()  # one deployment at a time
        self.failed: int | None = None  # the version that failed: not retried until a change
        self.last_error = ""
        self.last_smoke = ""
        self.aliases: dict[str, int] = {}
        self.since: float | None = None  # when the current version started serving
        self.switches: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._model: Any = None
        self._draining: list[threading.Thread] = []

    # ---- the registry -----------------------------------------------------------------------

    def champion(self) -> int | None:
        """The version holding the alias now (None: the alias is not set)."""
        from nbops.store.registry_store import RegisteredModel

        if self._model is None:
            self._model = RegisteredModel(self.target.config, self.target.model)
        self.aliases = self._model.aliases()
        return self.aliases.get(self.target.alias)

    # ---- deploying --------------------------------------------------------------------------

    def check(self, force: bool = False) -> dict[str, Any]:
        """Deploy the alias's version if it is not the one serving (or its server died)."""
        with self.lock:
            try:
                version = self.champion()
            except NbopsError as exc:
                self.last_error = f"registry: {exc.message}"
                return self.status_line()
            current = self.router.current
            if version is None:
                self.last_error = (
                    f"no version of {self.target.model!r} has alias {self.target.alias!r}"
                )
            elif current is not None and current.version == version and current.alive():
                self.failed = None
            elif version != self.failed or force or (current is not None and not current.alive()):
                self._deploy(version)
            return self.status_line()

    def _deploy(self, version: int) -> None:
        old = self.router.current
        try:
            backend, detail = self._ready(version)
        except Exception as exc:
            self._failed(version, old, exc)
            return
        self.router.swap(backend)
        self.on_switch(version)
        self.failed, self.last_error, self.last_smoke = None, "", detail
        self.since = time.time()
        event = self._event(version, old, True, detail)
        self.switches.append(event)
        append_deployment(self.target, event)
        shown = f"v{old.version} -> v{version}" if old is not None else f"v{version}"
        where = f"{self.target.model}@{self.target.alias}"
        self.echo(f"nbops serve: {where} {shown} at {backend.uri}; smoke test: {detail}")
        self._retire(old)

    def _ready(self, version: int) -> tuple[Backend, str]:
        """A healthy, smoke-tested server of ``version``: the warm standby if it is that
        version (a rollback), else a new one."""
        standby, self.standby = self.standby, None
        if standby is not None and standby.version == version and wire.healthy(standby.url):
            return standby, "warm standby (its smoke test passed when it was deployed)"
        if standby is not None:
            self._stop_later(standby)
        target = self.target
        log = target.home / "backend.log"
        backend = Backend(target.model, version, target.config.tracking_uri, log)
        try:
            backend.start()
            reference = ref.fetch(target, version)
            smoke = smoke_test(backend.url, reference, backend.uri, target.config.tracking_uri)
        except Exception:
            backend.stop()
            raise
        if not smoke.ok:
            backend.stop()
            raise ServingError(
                f"version {version} failed its smoke test: {smoke.detail}",
                fix="it is not served; the previous version keeps serving. Check the model "
                "(nbops model list) and promote a version that passes",
                model=target.model,
                version=version,
            )
        return backend, smoke.detail

    def _retire(self, old: Backend | None) -> None:
        """The replaced version: kept warm if it is now ``previous`` (the rollback target),
        else stopped once its last request is answered."""
        if old is None:
            return
        with contextlib.suppress(NbopsError):  # the registry now, not as the poll found it
            self.champion()  # (a promotion moves champion, then previous: two writes)
        if self.keep_standby and self.aliases.get("previous") == old.version:
            self.standby = old
        else:
            self._stop_later(old)

    def _failed(self, version: int, old: Backend | None, exc: Exception) -> None:
        target = self.target
        self.failed = version
        message = exc.message if isinstance(exc, NbopsError) else f"{type(exc).__name__}: {exc}"
        self.last_error = f"v{version} not deployed: {message}"
        keep = f"; still serving v{old.version}" if old is not None and old.alive() else ""
        self.echo(f"nbops serve: {self.last_error}{keep}")
        append_deployment(target, self._event(version, old, False, message))
        if old is None:  # nothing serves: `nbops serve` stops with this error
            if isinstance(exc, NbopsError):
                raise exc
            raise ServingError(self.last_error, fix=_FIX, model=target.model) from exc

    def _event(self, version: int, old: Backend | None, ok: bool, detail: str) -> dict[str, Any]:
        return {
            "at": time.time(),
            "model": self.target.model,
            "alias": self.target.alias,
            "version": version,
            "previous": old.version if old is not None else None,
            "ok": ok,
            "detail": detail,
        }

    # ---- the watcher ------------------------------------------------------------------------

    def watch(self, poll: float) -> threading.Thread:
        def loop() -> None:
            while not self._stop.wait(poll):
                try:
                    self.check()
                except Exception as exc:  # keep watching: the current version still serves
                    self.last_error = f"{type(exc).__name__}: {exc}"

        thread = threading.Thread(target=loop, name="nbops-deployer", daemon=True)
        thread.start()
        return thread

    def _stop_later(self, backend: Backend) -> None:
        """Stop ``backend`` once its requests are answered, without holding up the switch."""
        thread = threading.Thread(target=backend.drain_and_stop, name="nbops-drain")
        self._draining = [t for t in self._draining if t.is_alive()] + [thread]
        thread.start()

    def stop(self) -> None:
        """Stop watching; stop every server (together: each waits for its last request)."""
        self._stop.set()
        with self.lock:
            for backend in (self.standby, self.router.current):
                if backend is not None:
                    self._stop_later(backend)
            for thread in self._draining:
                thread.join()

    def status_line(self) -> dict[str, Any]:
        current = self.router.current
        return {
            "model": self.target.model,
            "alias": self.target.alias,
            "version": current.version if current is not None else None,
            "alias_version": self.aliases.get(self.target.alias),
            "standby": self.standby.version if self.standby is not None else None,
            "model_uri": current.uri if current is not None else None,
            "backend": current.url if current is not None else None,
            "since": self.since,
            "smoke_test": self.last_smoke,
            "last_error": self.last_error,
            "switches": len(self.switches),
        }
