"""The Level 1 loop with real processes: a promoted pipeline (with its deploy stage) served by
``nbops serve`` (MLflow's scoring server behind nbops' front), switched without a failed request,
logged, monitored, and retrained on drift and on a live metric below its threshold.

The tests share one promoted pipeline and one running server (module scope: a pipeline run and
a server start cost tens of seconds) and build on each other's registry state in file order:
v1 from the first run; v2 registered from v1's run, then rolled back; v3 from the retrain that
drift triggers; v4 from the retrain that fed-back labels trigger.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import yaml

from nbops import registry
from nbops.cli import main
from nbops.config import Config, load_config
from nbops.errors import ServingError
from nbops.pipeline import serializers
from nbops.pipeline.retrain import retrain
from nbops.pipeline.run import run_pipeline
from nbops.promote import promote
from nbops.serve import Server, serve, wire
from nbops.serve.logread import served
from nbops.serve.target import resolve

pytestmark = pytest.mark.kernel
NOTEBOOK = Path(__file__).parents[1] / "notebooks" / "serve_wine_one_step.ipynb"
MODEL = "serve_wine_one_step"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    import os

    from sklearn.datasets import load_wine

    root = tmp_path_factory.mktemp("serve")
    (root / "pyproject.toml").write_text('[project]\nname = "p"\nversion = "0"\n')
    (root / "data").mkdir()
    load_wine(as_frame=True).frame.to_csv(root / "data" / "wine.csv", index=False)
    shutil.copy(NOTEBOOK, root / NOTEBOOK.name)
    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith(("NBOPS_", "MLFLOW_"))}
    cwd = Path.cwd()
    os.chdir(root)
    try:
        yield root
    finally:
        os.chdir(cwd)
        os.environ.update(saved)


@pytest.fixture(scope="module")
def pipeline(project: Path) -> Path:
    """Promoted with --deploy and run once: champion v1, checked in mlflow models serve."""
    folder = promote(project / NOTEBOOK.name, deploy=True).out_dir
    lines: list[str] = []
    result = run_pipeline(folder, echo=lines.append)
    assert result.status == "FINISHED", "\n".join(lines)
    out = "\n".join(lines)
    assert "deploy: delivered (champion v1)" in out
    assert "predictions equal the pipeline's" in out  # no server yet: checked, then stopped
    return folder


@pytest.fixture(scope="module")
def server(pipeline: Path) -> Iterator[Server]:
    handle = serve(pipeline, poll=0.5)
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture(scope="module")
def config(project: Path) -> Config:
    return load_config(project)


def holdout(folder: Path) -> tuple[pd.DataFrame, pd.Series, object]:
    """The rows the model gate scored, their labels, and the pipeline's model."""
    load = [serializers.load(v, "train", "test", folder) for v in ("X_test", "y_test", "model")]
    return load[0], load[1], load[2]


def champion(config: Config) -> int:
    versions = registry.list_versions(config, MODEL)
    return next(v.version for v in versions if registry.CHAMPION in v.aliases)


def test_served_predictions_equal_the_pipelines_and_are_logged(
    pipeline: Path, server: Server
) -> None:
    X, _, model = holdout(pipeline)
    answer = server.send(X)
    assert answer.version == 1
    assert answer.predictions == model.predict(X).tolist()  # type: ignore[attr-defined]
    status = server.status()
    assert status["smoke_test"].endswith("predictions equal the pipeline's")
    # MLflow's own endpoints answer through the front
    assert wire.get_json(server.url, "/version")[0] == 200 and wire.healthy(server.url)
    wire.request(server.url, "POST", "/nbops/flush", b"")
    logged = served(resolve(pipeline).log_dir, 1, time.time())
    assert logged.version == 1 and logged.rows == len(X)
    assert logged.request_ids == [answer.request_id] * len(X)
    assert logged.inputs.equals(X.reset_index(drop=True))
    assert logged.predictions == answer.predictions
    # a request the model cannot take: MLflow's message, and a clear error from the handle
    with pytest.raises(ServingError, match="HTTP 400") as info:
        server.send(X.drop(columns=["proline"]))
    assert "proline" in str(info.value) and "signature" in info.value.fix


def test_serving_a_model_that_does_not_exist_says_so(project: Path) -> None:
    with pytest.raises(ServingError, match="no registered model 'no_such_model'"):
        serve("no_such_model", timeout=120)


def test_the_deploy_stage_skips_a_delivered_champion_and_runs_the_teams_command(
    pipeline: Path, server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["deploy", str(pipeline)]) == 0
    assert "v1 was delivered before and still is: nothing to do" in capsys.readouterr().out
    params = yaml.safe_load((pipeline / "params.yaml").read_text())
    params["deploy"]["command"] = 'echo "$NBOPS_MODEL_URI" > delivered.txt'
    (pipeline / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert main(["deploy", str(pipeline)]) == 0
    out = capsys.readouterr().out
    assert "the running nbops serve at" in out and "answers with v1 now" in out
    assert (pipeline / "delivered.txt").read_text().strip() == f"models:/{MODEL}/1"
    params["deploy"]["command"] = "exit 3"
    (pipeline / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert main(["deploy", str(pipeline)]) == 10  # ServingError
    assert "deploy.command `exit 3` exited with code 3" in capsys.readouterr().err
    params["deploy"]["command"] = None
    (pipeline / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (pipeline / "delivered.txt").unlink()


class Load:
    """Two clients sending 3-row batches back to back; every (status, version) answered."""

    def __init__(self, server: Server, batch: pd.DataFrame) -> None:
        self.server, self.body = server, wire.dataframe_split(batch)
        self.answers: list[tuple[int, int]] = []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._send) for _ in range(2)]
        for thread in self.threads:
            thread.start()

    def _send(self) -> None:
        while not self.stop.is_set():
            try:
                status, head, _ = wire.post_json(self.server.url, "/invocations", self.body)
            except OSError:  # a connection the server dropped: a failed request
                status, head = 0, {}
            self.answers.append((status, int(head.get("X-Model-Version", 0))))

    def until(self, count: int, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.answers) < count:
            assert time.monotonic() < deadline, f"{len(self.answers)} of {count} answers"
            time.sleep(0.05)

    def until_version(self, version: int, timeout: float = 30.0) -> None:
        """Until a client has had an answer from ``version`` (the switch is seen by clients,
        not only by the server's status)."""
        deadline = time.monotonic() + timeout
        while not any(v == version for _, v in self.answers[-50:]):
            assert time.monotonic() < deadline, f"no answer from v{version} in {timeout:.0f} s"
            time.sleep(0.02)

    def finish(self) -> list[tuple[int, int]]:
        self.stop.set()
        for thread in self.threads:
            thread.join()
        return self.answers


def test_promotion_and_rollback_switch_versions_with_no_failed_request(
    config: Config, pipeline: Path, server: Server
) -> None:
    X, _, _ = holdout(pipeline)
    load = Load(server, X.iloc[:3])
    try:
        switch_under_load(config, server, load)
    finally:
        answers = load.finish()
    assert all(status == 200 for status, _ in answers), Counter(s for s, _ in answers)
    assert server.status()["failed_requests"] == 0


def switch_under_load(config: Config, server: Server, load: Load) -> None:
    load.until(20)
    # a promotion: v2's own MLflow server starts beside v1's while v1 answers everything
    promoted = len(load.answers)
    v1 = registry.list_versions(config, MODEL)[0]
    registry.register(config, v1.run_id or "", MODEL, alias=registry.CHAMPION)  # v2: same run
    server.wait_for_version(2, timeout=180)
    load.until_version(2)  # the status says v2 a moment before a client's answer does
    during = len(load.answers) - promoted
    assert during >= 200, f"only {during} requests were sent while v2 started"
    assert server.status()["standby"] == 1  # the replaced champion stays up, for a rollback
    # the rollback: back to the warm v1 at once; 200 more requests go through the switch
    rolled = len(load.answers)
    start = time.monotonic()
    assert main(["model", "rollback", MODEL, "--reason", "test"]) == 0
    server.wait_for_version(1, timeout=180)
    assert time.monotonic() - start < 10  # no server had to start
    switched = len(load.answers)
    load.until(max(rolled + 200, switched + 50))
    versions = [v for _, v in load.answers]
    assert versions[0] == 1 and 2 in versions[promoted:rolled]
    assert set(versions[switched + 5 :]) == {1}  # (a request in flight may still end on v2)


def test_drift_is_monitored_and_triggers_a_retrain_that_is_served(
    config: Config, pipeline: Path, server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    from mlflow.tracking import MlflowClient

    X, _, _ = holdout(pipeline)
    drifted = pd.concat([X] * 2, ignore_index=True)
    drifted[["alcohol", "proline", "flavanoids", "hue"]] *= 1.6  # a recalibrated instrument
    drifted["color_intensity"] += 6.0
    drifted["od280/od315_of_diluted_wines"] *= 0.5
    drifted["total_phenols"] *= 1.8
    server.send(drifted)  # 90 rows to v1, the champion again after the rollback

    assert main(["monitor", str(pipeline)]) == 0
    out = capsys.readouterr().out
    assert "monitor serve_wine_one_step v1: drift" in out and "retrain trigger: drift" in out
    assert "against the gate holdout of v1" in out
    report = pipeline / "reports" / "monitor.html"
    assert report.is_file() and "proline" in report.read_text()
    v1_run = registry.list_versions(config, MODEL)[-1].run_id
    history = MlflowClient(config.tracking_uri).get_metric_history(v1_run, "monitor.drift_share")
    assert history and history[-1].value >= 0.5

    lines: list[str] = []
    outcome = retrain(pipeline, echo=lines.append)
    out = "\n".join(lines)
    assert outcome.ran and outcome.ok and outcome.triggers == ["drift"], out
    assert "trigger drift: inputs drifted" in out and "the model gate judges that model" in out
    assert "registered serve_wine_one_step v3 (champion)" in out
    assert "deploy: delivered (champion v3)" in out and "running nbops serve" in out
    assert server.status()["version"] == 3  # the deploy stage switched it before returning
    # the same drift does not retrain twice: the next window starts after this retrain
    lines.clear()
    again = retrain(pipeline, echo=lines.append)
    assert not again.ran and "up to date" in "\n".join(lines)


def test_labels_below_the_threshold_trigger_a_retrain(
    config: Config, pipeline: Path, server: Server
) -> None:
    X, y, _ = holdout(pipeline)
    answer = server.send(X)
    assert answer.version == 3
    wrong = [(label + 1) % 3 for label in y]  # the true classes turn out otherwise
    assert server.feedback(answer.request_id, wrong) == len(X)
    params = yaml.safe_load((pipeline / "params.yaml").read_text())
    assert params["monitor"]["max_drop"] == 0.1  # promote wrote the section
    lines: list[str] = []
    outcome = retrain(pipeline, echo=lines.append)
    out = "\n".join(lines)
    assert outcome.ran and outcome.triggers == ["performance"], out
    assert f"live accuracy 0 on {len(X)} labelled rows is below" in out
    assert champion(config) == 4
    server.wait_for_version(4, timeout=180)
