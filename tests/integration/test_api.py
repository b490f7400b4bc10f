"""`with nbops.track():` in a plain Python script: the same capture as %%track."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from mlflow.tracking import MlflowClient

from nbops.config import Config

SCRIPT = textwrap.dedent(
    """
    import nbops
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge
    from sklearn.metrics import mean_squared_error

    X, y = load_diabetes(return_X_y=True, as_frame=True)

    def train(alpha_value):
        with nbops.track("ridge", experiment="scripts") as run:
            alpha = 0.5
            model = Ridge(alpha=alpha_value).fit(X, y)
            mse = mean_squared_error(y, model.predict(X))
            nbops.log_param("note", "from a function")
        return run

    with nbops.track("module-level", experiment="scripts", params=["config"]) as top:
        config = {"folds": 3}
        score = config["folds"] / 6
    run = train(2.0)
    print(top.record.code.strip().splitlines()[0])
    print(sorted(run.record.params)[:3], run.record.model.class_name)
    """
)


def test_script_blocks_are_tracked_and_flushed_at_exit(project: Path, config: Config) -> None:
    script = project / "train.py"
    script.write_text(SCRIPT)
    out = subprocess.run(
        [sys.executable, str(script)], cwd=project, capture_output=True, text=True, timeout=180
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == 'config = {"folds": 3}'
    assert lines[1] == "['alpha', 'model.alpha', 'note'] Ridge"  # lean: no Ridge defaults

    client = MlflowClient(tracking_uri=config.tracking_uri)
    experiment = client.get_experiment_by_name("scripts")
    runs = {r.info.run_name: r for r in client.search_runs([experiment.experiment_id])}
    assert set(runs) == {"module-level", "ridge"}
    assert runs["module-level"].data.params == {"config": '{"folds": 3}'}
    assert runs["module-level"].data.metrics == {"score": 0.5}
    ridge = runs["ridge"]
    assert ridge.data.params["model.alpha"] == "2.0"
    assert ridge.data.params["note"] == "from a function"
    assert "mse" in ridge.data.metrics
    [X] = [d.dataset for d in ridge.inputs.dataset_inputs if d.dataset.name == "X"]
    assert len(X.digest) == 32 and '"nbops_fingerprint": "xxh128:' in X.profile
    assert ridge.data.tags["nbops.source"] == "block"
    assert not list((project / ".nbops" / "spool").glob("*"))
