"""``nbops serve [PIPELINE|MODEL]``: the champion as a prediction service, in the foreground.

Starts the front server (:mod:`nbops.serve.front`) on ``host:port``, deploys the version holding
the alias (:mod:`nbops.serve.deployer`), then follows the alias until Ctrl-C or SIGTERM. While it
runs, ``<home>/server.json`` says where it listens (read by ``nbops deploy``, the notebook handle
and ``nbops level``); on the way out the request log is written to the end, the MLflow server is
stopped and the file removed.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nbops._pids import alive
from nbops.errors import ServingError
from nbops.serve.target import SERVER_FILE, Target, read_json, write_json

if TYPE_CHECKING:
    from nbops.serve.deployer import Deployer
    from nbops.serve.front import FrontServer
    from nbops.serve.predlog import PredictionLog

DEFAULT_PORT = 5005
DEFAULT_POLL = 5.0


@dataclass
class Options:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    poll: float = DEFAULT_POLL
    log: bool = True
    exit_with: int | None = None  # stop when this process is gone (the notebook's kernel)
    standby: bool = True  # keep the replaced champion up for an instant rollback


def run_server(target: Target, options: Options, echo: Callable[[str], None] = print) -> int:
    from nbops.serve.deployer import Deployer
    from nbops.serve.front import FrontServer
    from nbops.serve.predlog import PredictionLog
    from nbops.serve.router import Router

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # a log, not a tty
    router = Router()
    state, started = target.home / SERVER_FILE, time.time()
    front: FrontServer  # bound below; the callbacks run only once it is
    deployer = Deployer(
        target,
        router,
        echo,
        on_switch=lambda v: write_json(state, _state(front, target, v, started)),
        standby=options.standby,
    )
    log = PredictionLog(target.log_dir, target.model) if options.log else None
    try:
        front = FrontServer(
            (options.host, options.port),
            router,
            log,
            status=lambda: _status(front, deployer, log, target),
            reload=lambda: deployer.check(force=True),
        )
    except OSError as exc:
        if log is not None:
            log.close()
        raise ServingError(
            f"cannot listen on {options.host}:{options.port}: {exc.strerror or exc}",
            fix="pick another port (--port N; 0 lets the system choose)",
            model=target.model,
        ) from None
    stopping = threading.Event()
    _on_signals(stopping)
    threading.Thread(target=front.serve_forever, name="nbops-front", daemon=True).start()
    write_json(state, _state(front, target, None, started))
    try:
        echo(f"nbops serve: deploying {target.model}@{target.alias} (mlflow models serve) ...")
        deployer.check()
        _check_serving(deployer)
        where = f"log: {target.log_dir}" if log is not None else "not logging requests"
        echo(f"nbops serve: {front.url} answers with {target.model}@{target.alias} ({where}); "
             f"checking the alias every {options.poll:g} s; Ctrl-C stops")  # fmt: skip
        deployer.watch(options.poll)
        _wait(stopping, options.exit_with)
    finally:
        _shut_down(front, deployer, log)
    echo("nbops serve: stopped")
    return 0


def _shut_down(front: FrontServer, deployer: Deployer, log: PredictionLog | None) -> None:
    """No new requests; the servers stopped after their last answers; the log written to the
    end (its failures said); ``server.json`` removed if it is this server's."""
    front.shutdown()
    deployer.stop()
    if log is not None:
        log.close()
        for error in log.errors:
            print(f"nbops serve: request log: {error}", file=sys.stderr)
    state = deployer.target.home / SERVER_FILE
    if read_json(state).get("pid") == os.getpid():  # not another server's of this model
        state.unlink(missing_ok=True)
    front.server_close()


def _check_serving(deployer: Deployer) -> None:
    target = deployer.target
    if deployer.router.current is None:
        raise ServingError(
            deployer.last_error or "nothing to serve",
            fix=f"register a model and give it the alias: nbops model promote {target.model} "
            "VERSION (or run the pipeline: its gate registers the champion)",
            model=target.model,
        )


def _wait(stopping: threading.Event, exit_with: int | None) -> None:
    while not stopping.wait(1.0):
        if exit_with is not None and not alive(exit_with):
            return


def _on_signals(stopping: threading.Event) -> None:
    def handler(signum: int, frame: object) -> None:
        stopping.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, handler)


def _state(
    front: FrontServer, target: Target, version: int | None, started: float
) -> dict[str, Any]:
    return {
        "pid": os.getpid(),
        "url": front.url,
        "model": target.model,
        "alias": target.alias,
        "version": version,
        "started": started,
        "pipeline": str(target.pipeline) if target.pipeline else None,
    }


def _status(
    front: FrontServer, deployer: Deployer, log: PredictionLog | None, target: Target
) -> dict[str, Any]:
    status = deployer.status_line()
    status["url"] = front.url
    status["requests"] = front.requests
    status["failed_requests"] = front.failed
    status["log_dir"] = str(target.log_dir) if log is not None else None
    status["logged"] = log.written if log is not None else 0
    status["log_errors"] = list(log.errors) if log is not None else []
    return status
