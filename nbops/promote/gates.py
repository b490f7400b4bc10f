"""The Level 1 gates promote adds to every pipeline: ``validate_data`` and ``validate_model``.

``validate_data`` runs first: it checks the tabular files the notebook reads against the data
contract (``schema.yaml``) and the reference profile inferred at promote time; every step that
reads those files depends on it, so schema skew stops the pipeline before training.
``validate_model`` runs last: it scores the candidate against the registry's champion the way
the notebook evaluated its model (found by :mod:`nbops.notebook.evaluation`). Their settings
are the ``drift:`` and ``gate:`` sections of ``params.yaml``.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nbops.errors import NotebookError
from nbops.notebook.evaluation import Evaluation, analyse, producer
from nbops.notebook.plan import Plan
from nbops.pipeline_folder import (
    DATA_STAGE,
    DEPLOY_STAGE,
    MODEL_STAGE,
    PROFILE,
    SCHEMA,
    report_file,
)
from nbops.promote import layout

DRIFT_DEFAULTS: dict[str, float] = {
    "psi": 0.2,
    "ks_pvalue": 0.05,
    "ks_statistic": 0.1,
    "share": 0.5,
}


ROLES = ("model", "X", "y")
MONITOR_DEFAULTS: dict[str, Any] = {
    "retrain_on_drift": True,
    "metric_threshold": None,
    "max_drop": 0.1,
    "min_rows": 50,
    "min_labels": 30,
    "window_days": 7,
}
MONITOR_COMMENT = (
    "# Monitoring (nbops monitor; nbops retrain fires on it): the served champion's inputs and\n"
    "# predictions drift by the drift: rules against the gate's holdout; its live metric (on\n"
    "# labels fed back) is degraded when worse than metric_threshold or than the gate score by\n"
    "# more than max_drop (a fraction of it). Each needs min_rows / min_labels served rows.\n"
)
DEPLOY_COMMENT = (
    "# Delivery (stage deploy): each new champion is smoke-tested in mlflow models serve (or\n"
    "# switched in a running nbops serve), then command, if set, runs in this folder with\n"
    "# NBOPS_MODEL_URI=models:/NAME/VERSION to hand it to your own serving.\n"
)


@dataclass
class Gates:
    """What promote found for the gates: the files to validate and the evaluation to repeat,
    and for a gate it could not attach, why and the fix (``missing[stage]``)."""

    data: list[str]  # tabular files the steps read (relative to the pipeline folder)
    evaluation: Evaluation | None
    missing: dict[str, dict[str, str]] = field(default_factory=dict)
    deploy: bool = False  # a deploy stage after the model gate (`nbops promote --deploy`)

    @property
    def enabled(self) -> bool:
        return bool(self.data) or self.evaluation is not None


def plan_gates(plan: Plan) -> Gates:
    """Find the gates' inputs and make the holdout and the model artifacts of their steps.

    A gate that cannot be attached is never dropped in silence: the plan's notes say why (the
    source notebook's cell) and which tag attaches it, and ``Gates.missing`` keeps both for the
    manifest (``nbops level`` shows them).
    """
    for step in plan.steps:
        if step.name in (DATA_STAGE, MODEL_STAGE, DEPLOY_STAGE):
            raise NotebookError(
                f"step {step.name!r} has the name of a stage nbops adds to every pipeline",
                fix=f"rename the tag step:{step.name} (e.g. step:my_{step.name})",
                step=step.name,
            )
    from nbops.promote import data_gate

    data, data_notes, data_missing = data_gate.find(plan, Path(plan.notebook).parent)
    plan.notes.extend(data_notes)
    evaluation, model_missing = _evaluation(plan)
    gates = Gates(data, evaluation)
    for stage, missing in ((DATA_STAGE, data_missing), (MODEL_STAGE, model_missing)):
        if missing:
            gates.missing[stage] = missing
            plan.notes.append(
                f"no {stage} stage ({_WHAT[stage]}): {missing['reason']}. To attach it: "
                f"{missing['fix']}, then promote again"
            )
    return gates


_WHAT = {DATA_STAGE: "the data gate", MODEL_STAGE: "the model gate"}


def _evaluation(plan: Plan) -> tuple[Evaluation | None, dict[str, str]]:
    """The evaluation the model gate repeats, checked against the installed scikit-learn, its
    variables made outputs of the steps that hold them; else (None, reason and fix)."""
    from nbops.promote.signature import check_evaluation

    try:
        analysis = analyse(plan)
    except Exception as exc:  # a notebook the analysis trips on must still promote, and say so
        reason = f"promote could not read how the notebook scores its model ({type(exc).__name__})"
        return None, {
            "reason": reason,
            "fix": "tag the scoring cell `gate` and its model `model:VAR`",
        }
    plan.notes.extend(analysis.notes)
    evaluation = analysis.evaluation
    if evaluation is None:
        return None, {"reason": analysis.reason, "fix": analysis.fix}
    notes, problem, fix = check_evaluation(evaluation)
    plan.notes.extend(notes)
    if problem:
        return None, {"reason": problem, "fix": fix}
    for role in ROLES:
        var = getattr(evaluation, role)
        source = plan.step(producer(plan, plan.step(evaluation.scope(role)), var))
        if var not in source.outputs:
            source.outputs.append(var)  # the gate loads it: the step must save it
    return evaluation, {}


def params_sections(plan: Plan, gates: Gates) -> str:
    """The ``drift:`` and ``gate:`` sections of params.yaml, commented for the user."""
    import yaml

    parts = []
    if gates.data:
        body = yaml.safe_dump({"drift": DRIFT_DEFAULTS}, sort_keys=False)
        parts.append(
            "# Data validation (stage validate_data): a feature drifts when its PSI >= psi, or\n"
            "# when its KS test has p < ks_pvalue and statistic >= ks_statistic; the data\n"
            "# drifts when that share of features does. Drift is reported, never fatal.\n" + body
        )
    evaluation = gates.evaluation
    if evaluation is not None:
        gate = {
            "model_name": plan.name,
            "metric": evaluation.metric,
            "greater_is_better": evaluation.greater_is_better,
            "min_delta": 0.0,
            "min_value": None,
            "auto_promote": True,
            "evaluate": _evaluate_spec(plan, evaluation),
        }
        parts.append(
            "# Model gate (stage validate_model): the candidate passes when its metric is at\n"
            "# least the champion's minus min_delta (plus, if lower is better) and beats\n"
            "# min_value; it is then registered as model_name (alias challenger, or champion\n"
            "# with auto_promote).\n"
            f"# evaluate: how the notebook scores its model, {_comment(evaluation.where)}.\n"
            + _how(evaluation)
            + yaml.safe_dump({"gate": gate}, sort_keys=False)
        )
        parts.append(
            MONITOR_COMMENT + yaml.safe_dump({"monitor": MONITOR_DEFAULTS}, sort_keys=False)
        )
    if gates.deploy and evaluation is not None:
        parts.append(
            DEPLOY_COMMENT + yaml.safe_dump({"deploy": {"command": None}}, sort_keys=False)
        )
    return "\n".join(parts)


def _comment(text: str) -> str:
    return " ".join(text.split())


def _how(evaluation: Evaluation) -> str:
    """Comment lines for what the notebook does that the spec reads differently."""
    lines = []
    if evaluation.via:
        lines.append(f"# (read from its {evaluation.via}: {evaluation.metric})")
    if evaluation.post:
        from nbops.notebook.choice import describe_post

        lines.append(
            f"# post: the notebook's arithmetic on the score ({describe_post(evaluation.post)})"
        )
    return "".join(f"{_comment(line)}\n" for line in lines)


def _evaluate_spec(plan: Plan, evaluation: Evaluation) -> dict[str, Any]:
    def artifact(role: str) -> str:
        var = getattr(evaluation, role)
        return f"{producer(plan, plan.step(evaluation.scope(role)), var)}/{var}"

    spec: dict[str, Any] = {
        "function": evaluation.function,
        "model": artifact("model"),
        "X": artifact("X"),
        "y": artifact("y"),
        "method": evaluation.method,
    }
    if evaluation.kwargs:
        spec["kwargs"] = evaluation.kwargs
    if evaluation.post:
        spec["post"] = evaluation.post
    return spec


def gate_stages(plan: Plan, gates: Gates, stage_type: Any) -> tuple[list[Any], list[Any]]:
    """(stages before the steps, stages after them), as ``stage_type`` (render's Stage)."""
    first, last = [], []
    if gates.data:
        deps = [*gates.data, SCHEMA, PROFILE]
        first.append(
            stage_type(
                name=DATA_STAGE,
                cmd="nbops validate data",
                deps=deps,
                params=["drift"],
                # outputs, so a batch DVC has seen before restores its own reports from the
                # run cache (the model gate and `nbops run` read the status from them)
                outs=[report_file(DATA_STAGE, ext) for ext in ("json", "md", "html")],
                metrics=[layout.metrics_file(DATA_STAGE)],
            )
        )
    evaluation = gates.evaluation
    if evaluation is not None:
        producers = [
            producer(plan, plan.step(evaluation.scope(role)), getattr(evaluation, role))
            for role in ROLES
        ]
        deps = [layout.artifacts_dir(p) for p in dict.fromkeys(producers)]
        deps.append(layout.metrics_file(evaluation.step))
        last.append(
            stage_type(
                name=MODEL_STAGE,
                cmd="nbops validate model",
                deps=list(dict.fromkeys(deps)),
                params=["gate"],
                metrics=[layout.metrics_file(MODEL_STAGE)],
                always_changed=True,  # the champion may have changed since the last run
            )
        )
        if gates.deploy:
            last.append(
                stage_type(
                    name=DEPLOY_STAGE,
                    cmd="nbops deploy",
                    deps=[layout.metrics_file(MODEL_STAGE)],
                    params=[DEPLOY_STAGE],
                    metrics=[layout.metrics_file(DEPLOY_STAGE)],
                    always_changed=True,  # an alias can move outside the pipeline (rollback)
                )
            )
    return first, last


def validated_dep(step_files: list[str], gates: Gates) -> str | None:
    """The dep a step that reads validated data (a file, or a folder holding one) gets, so
    DVC runs validate_data first."""
    if any(layout.is_inside(d, f) for f in step_files for d in gates.data):
        return layout.metrics_file(DATA_STAGE)
    return None


def contract_files(notebook_dir: Path, gates: Gates) -> dict[str, str]:
    """``schema.yaml`` and ``reference/profile.json`` inferred from the notebook's data files
    (rendered in a scratch folder, so promote's manifest check sees them like any file)."""
    if not gates.data:
        return {}
    from nbops.validate.data import write_contract

    with tempfile.TemporaryDirectory(prefix="nbops-contract-") as tmp:
        scratch = Path(tmp)
        for rel in gates.data:
            target = scratch / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to((notebook_dir / rel).resolve())
        written = write_contract(scratch, list(gates.data))
        return {rel: (scratch / rel).read_text(encoding="utf-8") for rel in written}
