"""The ``deploy`` stage (``nbops deploy``), after the model gate: continuous delivery.

For the champion the registry now names, in this order: if an ``nbops serve`` for the model is
running, it is told to switch now (blue-green, no request lost) and the stage waits until the
new version answers; otherwise the version is checked the way serving will run it (its own
``mlflow models serve`` started, health-checked, smoke-tested on the gate's holdout, stopped).
Then ``deploy.command`` in ``params.yaml``, if set, hands the model to the team's own serving,
with ``NBOPS_MODEL_URI=models:/NAME/VERSION`` (the contract: that URI and the model's
signature). A champion already delivered is not delivered again. Reports:
``reports/deploy.{json,md}`` and ``metrics/deploy.json``.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from nbops.errors import ConfigError, ServingError
from nbops.pipeline_folder import DEPLOY_STAGE, METRICS_DIR, REPORTS_DIR, metrics_file, report_file
from nbops.serve.target import Target, resolve, running_server

STAGE = DEPLOY_STAGE
REPORT_JSON, REPORT_MD = report_file(STAGE, "json"), report_file(STAGE, "md")
METRICS = metrics_file(STAGE)
SWITCH_TIMEOUT = 300.0  # s: a server loaded by a pipeline run starts slowly


@dataclass
class DeployResult:
    model: str
    version: int | None
    ok: bool = True
    skipped: bool = False
    lines: list[str] = field(default_factory=list)
    command: str | None = None

    def text(self) -> str:
        head = f"deploy {self.model}: " + (
            "no champion, nothing to deploy"
            if self.version is None
            else f"champion v{self.version}"
        )
        return "\n".join([head, *(f"  {line}" for line in self.lines)])


def deploy(folder: str | Path = ".") -> DeployResult:
    """Deliver the champion of the pipeline in ``folder`` (see the module docstring); a
    ServingError, after the reports are written, when it could not be delivered."""
    path = Path(folder).resolve()
    target = resolve(path)
    command = _command(path)
    from nbops.store.registry_store import open_model

    with open_model(target.config, target.model, "look up the champion") as model:
        version = model.aliases().get(target.alias) if model.exists() else None
    result = DeployResult(target.model, version, command=command)
    server = running_server(target)
    if version is None:
        result.lines.append("the model gate has not registered a champion yet")
    elif _delivered(path, result, server):
        result.skipped = True
        result.lines.append(f"v{version} was delivered before and still is: nothing to do")
    else:
        try:
            _deliver(target, version, server, result)
            if command:
                _hand_over(path, target, version, command, result)
        except ServingError as exc:
            result.ok = False
            result.lines.append(f"FAILED: {exc.message}")
            _write(path, result)
            raise
    _write(path, result)
    return result


def _command(folder: Path) -> str | None:
    from nbops.pipeline.layout import read_params

    section = read_params(folder).get(STAGE)
    if section is None:
        return None
    command = section.get("command") if isinstance(section, Mapping) else section
    if command is None or (isinstance(command, str) and command.strip()):
        return command
    raise ConfigError(
        f"params.yaml: `{STAGE}.command` is {command!r}; expected a shell command or null",
        fix="e.g. `deploy: {command: ./deploy.sh}` (it gets NBOPS_MODEL_URI), or null",
    )


def _delivered(folder: Path, result: DeployResult, server: dict[str, Any] | None) -> bool:
    last = _read(folder / REPORT_JSON)
    same = last.get("version") == result.version and last.get("ok") is True
    same = same and last.get("command") == result.command
    return same and (server is None or server.get("version") == result.version)


def _deliver(
    target: Target, version: int, server: dict[str, Any] | None, result: DeployResult
) -> None:
    if server is not None and server.get("alias") == target.alias:
        _switch(str(server["url"]), version, result)
    else:
        _verify(target, version, result)


def _switch(url: str, version: int, result: DeployResult) -> None:
    """Ask the running server to deploy the champion now, and wait until it answers with it."""
    from nbops.serve import wire

    try:
        wire.request(url, "POST", "/nbops/reload", b"", timeout=SWITCH_TIMEOUT)
        _, body = wire.get_json(url, "/nbops/status")
    except OSError as exc:
        raise ServingError(f"the running server at {url} did not answer: {exc}", fix=_FIX) from exc
    serving = body.get("version") if isinstance(body, dict) else None
    if serving != version:
        error = body.get("last_error") if isinstance(body, dict) else body
        raise ServingError(
            f"the running server at {url} still serves v{serving}, not v{version}: {error}",
            fix=_FIX,
        )
    result.lines.append(f"the running nbops serve at {url} answers with v{version} now")
    result.lines.append(str(body.get("smoke_test") or ""))


def _verify(target: Target, version: int, result: DeployResult) -> None:
    """Start the version's own MLflow scoring server, smoke-test it, stop it."""
    from nbops.serve import reference
    from nbops.serve.backend import Backend
    from nbops.serve.smoke import smoke_test

    backend = Backend(target.model, version, target.config.tracking_uri, target.home / "deploy.log")
    try:
        backend.start()
        found = reference.fetch(target, version)
        smoke = smoke_test(backend.url, found, backend.uri, target.config.tracking_uri)
    finally:
        backend.stop()
    if not smoke.ok:
        raise ServingError(f"v{version} failed its smoke test: {smoke.detail}", fix=_FIX)
    result.lines.append(f"mlflow models serve -m {backend.uri}: {smoke.text()}")
    result.lines.append(f"serve it: nbops serve {target.argument} (no server is running now)")


def _hand_over(
    folder: Path, target: Target, version: int, command: str, result: DeployResult
) -> None:
    """Run ``deploy.command`` with the model's URI in its environment."""
    env = dict(os.environ)
    env.update(
        NBOPS_MODEL_URI=f"models:/{target.model}/{version}",
        NBOPS_MODEL_NAME=target.model,
        NBOPS_MODEL_VERSION=str(version),
        MLFLOW_TRACKING_URI=target.config.tracking_uri,
    )
    done = subprocess.run(
        command, shell=True, cwd=folder, env=env, capture_output=True, text=True, check=False
    )
    output = (done.stdout + done.stderr).strip()
    if done.returncode != 0:
        raise ServingError(
            f"deploy.command `{command}` exited with code {done.returncode}:\n{output[-2000:]}",
            fix="fix the command (it runs in the pipeline folder with NBOPS_MODEL_URI set), "
            "then `nbops deploy`",
        )
    result.lines.append(f"deploy.command `{command}` delivered models:/{target.model}/{version}")


def _write(folder: Path, result: DeployResult) -> None:
    data = asdict(result) | {"at": time.time()}
    (folder / REPORTS_DIR).mkdir(exist_ok=True)
    (folder / REPORT_JSON).write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    (folder / REPORT_MD).write_text(f"# Deploy\n\n```\n{result.text()}\n```\n", encoding="utf-8")
    metrics = {"deploy.version": float(result.version or 0), "deploy.ok": float(result.ok)}
    (folder / METRICS_DIR).mkdir(exist_ok=True)
    (folder / METRICS).write_text(json.dumps(metrics, indent=1) + "\n", encoding="utf-8")


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


_FIX = (
    "the previous champion keeps serving; see the server's log (<project>/.nbops/serve/<model>/), "
    "fix the model or promote another version, then run `nbops deploy` again"
)
