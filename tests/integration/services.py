"""External services for the scaling-out tests: a throwaway PostgreSQL cluster, an ``mlflow
server`` on top of it, and the Airflow virtualenv.

A missing service skips its test, unless ``NBOPS_REQUIRE_SERVICES=1`` (CI): then it fails, so a
broken install cannot pass as a skip.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import pytest

REQUIRE_ENV = "NBOPS_REQUIRE_SERVICES"
PG_USER = "nbops"
PG_DB = "mlflow"


def required() -> bool:
    return os.environ.get(REQUIRE_ENV, "").strip().lower() in {"1", "true", "yes"}


def unavailable(reason: str) -> NoReturn:
    """Skip, or fail when the services are required (CI)."""
    if required():
        pytest.fail(f"{reason} ({REQUIRE_ENV}=1, so this is a failure, not a skip)")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# ---- PostgreSQL -----------------------------------------------------------------------------


def postgres_bin() -> Path | None:
    """Debian's server binaries (``postgresql-NN``), newest version first."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    if found:
        return Path(found[0]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


@dataclass
class Postgres:
    bin: Path
    base: Path  # holds data/, the log and the socket
    port: int
    owner: pwd.struct_passwd | None  # the user the server runs as when we are root

    @property
    def url(self) -> str:
        # SQLAlchemy 2.1 maps plain postgresql:// to psycopg 3; the test dependency is psycopg2
        return f"postgresql+psycopg2://{PG_USER}@127.0.0.1:{self.port}/{PG_DB}"

    def run(self, *args: str) -> None:
        """A server binary, as the cluster's owner (PostgreSQL refuses to run as root)."""
        kwargs: dict[str, object] = {}
        if self.owner is not None:
            kwargs = {"user": self.owner.pw_uid, "group": self.owner.pw_gid, "extra_groups": []}
        done = subprocess.run(
            [str(self.bin / args[0]), *args[1:]],
            cwd=self.base,
            capture_output=True,
            text=True,
            check=False,
            **kwargs,  # type: ignore[arg-type]
        )
        if done.returncode != 0:
            log = tail(self.base / "postgres.log")
            pytest.fail(f"{args[0]} failed: {done.stdout}{done.stderr}\nserver log:\n{log}")

    def start(self) -> None:
        data = self.base / "data"
        self.run("initdb", "-D", str(data), "-U", PG_USER, "--auth=trust", "-E", "UTF8", "-N")
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.base} -c fsync=off"
        log = str(self.base / "postgres.log")
        self.run("pg_ctl", "-D", str(data), "-l", log, "-w", "-t", "60", "-o", options, "start")
        self.run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", PG_USER, PG_DB)

    def stop(self) -> None:
        with contextlib.suppress(BaseException):
            self.run("pg_ctl", "-D", str(self.base / "data"), "-m", "immediate", "stop")


@contextlib.contextmanager
def postgres(tmp: Path) -> Iterator[Postgres]:
    """A fresh cluster on a free port, deleted afterwards. As root it runs as Debian's
    ``postgres`` user, in a folder of its own under /tmp (pytest's tmp is private to root)."""
    bindir = postgres_bin()
    if bindir is None:
        unavailable("PostgreSQL server binaries not found (apt-get install -y postgresql)")
    owner = None
    base = tmp
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            unavailable("running as root and there is no 'postgres' user to run PostgreSQL as")
        base = Path(tempfile.mkdtemp(prefix="nbops-pg-"))
        os.chown(base, owner.pw_uid, owner.pw_gid)
    server = Postgres(bindir, base, free_port(), owner)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        if base != tmp:
            shutil.rmtree(base, ignore_errors=True)


# ---- mlflow server --------------------------------------------------------------------------


@dataclass
class MlflowServer:
    url: str
    artifacts: Path
    process: subprocess.Popen[bytes]
    log: Path


@contextlib.contextmanager
def mlflow_server(backend: str, tmp: Path, timeout: float = 120.0) -> Iterator[MlflowServer]:
    """``mlflow server`` on a free port, artifacts proxied to a local folder (standing in for
    object storage); waits for ``/health``."""
    pytest.importorskip("psycopg2", reason="psycopg2-binary (a test dependency) is missing")
    artifacts, log = tmp / "artifacts", tmp / "mlflow-server.log"
    artifacts.mkdir(parents=True, exist_ok=True)
    port = free_port()
    command = [
        *(sys.executable, "-m", "mlflow", "server", "--backend-store-uri", backend),
        *("--artifacts-destination", str(artifacts), "--host", "127.0.0.1"),
        *("--port", str(port), "--workers", "1"),
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=tmp, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = MlflowServer(f"http://127.0.0.1:{port}", artifacts, process, log)
    try:
        _wait_healthy(server, timeout)
        yield server
    finally:
        _stop(process)


def _wait_healthy(server: MlflowServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"mlflow server exited ({server.process.returncode}):\n{tail(server.log)}")
        health = f"{server.url}/health"
        with contextlib.suppress(OSError), urllib.request.urlopen(health, timeout=2) as response:
            if response.status == 200:
                return
        time.sleep(0.3)
    pytest.fail(f"mlflow server not healthy after {timeout:.0f} s:\n{tail(server.log)}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """The server and its workers (one process group); its state is thrown away, so a server
    that does not stop at once (uvicorn waits for open connections) is killed."""
    for sig, wait in ((signal.SIGTERM, 3), (signal.SIGKILL, 5)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(wait)
            return


# ---- Airflow --------------------------------------------------------------------------------

# Airflow pins much of what nbops also uses, so it gets its own virtualenv. Only PyPI is
# reachable (not Airflow's constraints files), so the versions are pinned here. The papermill
# provider goes in without its dependencies: they include papermill[all] (the Azure, GCS and S3
# SDKs, 430 MB), of which the operator needs papermill alone; the install then takes ~1/4 less.
AIRFLOW_REQUIREMENTS = (
    "apache-airflow==3.3.2",
    "apache-airflow-providers-standard==1.21.0",
    "papermill==2.7.0",
)
AIRFLOW_NO_DEPS = ("apache-airflow-providers-papermill==3.13.3",)
AIRFLOW_VENV = Path(__file__).resolve().parents[2] / ".venv-airflow"  # gitignored, reused


def airflow_python(timeout: float = 900.0) -> Path:
    """The Python of Airflow's virtualenv: reused while its pins match; created (1-2 minutes)
    only when the services are required, else the test is skipped."""
    python = AIRFLOW_VENV / "bin" / "python"
    stamp = AIRFLOW_VENV / ".nbops-requirements"
    wanted = "\n".join((*AIRFLOW_REQUIREMENTS, *AIRFLOW_NO_DEPS)) + "\n"

    def ready() -> bool:
        return python.exists() and stamp.is_file() and stamp.read_text() == wanted

    if ready():
        return python
    if not required():
        pytest.skip(f"no Airflow in {AIRFLOW_VENV}; {REQUIRE_ENV}=1 installs it (1-2 minutes)")
    import fcntl

    with open(f"{AIRFLOW_VENV}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another pytest process may be installing it
        if ready():
            return python
        shutil.rmtree(AIRFLOW_VENV, ignore_errors=True)
        steps = [
            [sys.executable, "-m", "venv", str(AIRFLOW_VENV)],
            [str(python), "-m", "pip", "install", "--quiet", *AIRFLOW_REQUIREMENTS],
            [str(python), "-m", "pip", "install", "--quiet", "--no-deps", *AIRFLOW_NO_DEPS],
        ]
        for command in steps:
            done = subprocess.run(
                command, capture_output=True, text=True, timeout=timeout, check=False
            )
            if done.returncode != 0:
                pytest.fail(
                    f"{' '.join(command)} failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
                )
        stamp.write_text(wanted)
    return python
