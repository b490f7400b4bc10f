"""Every name in a promoted pipeline folder (``docs/pipeline-layout.md``), stated once.

Promote writes these files, ``nbops run``/``step`` and the gates read and write them, and
``nbops level`` looks for them: all of them name paths through this module. Every path is posix
and relative to the pipeline folder, so the folder runs wherever it is copied. Stdlib only.
"""

from __future__ import annotations

MANIFEST = ".nbops-promote.json"  # what promote generated: hashes, data, gates left out
README = "README.md"
PARAMS = "params.yaml"
DVC_YAML = "dvc.yaml"
DVC_LOCK = "dvc.lock"
GITIGNORE = ".gitignore"
SCHEMA = "schema.yaml"  # the data contract
STEPS_DIR = "steps"  # the step notebooks
DATA_DIR = "data"  # data files promote copied and `dvc add`-ed
REFERENCE_DIR = "reference"
PROFILE = f"{REFERENCE_DIR}/profile.json"  # the training data's profile (drift reference)
ARTIFACTS_DIR = "artifacts"
METRICS_DIR = "metrics"
REPORTS_DIR = "reports"
# Folders the steps write at run time: data copied there would collide with step outputs.
RUNTIME_DIRS = (ARTIFACTS_DIR, METRICS_DIR, REPORTS_DIR)
# What promote and the steps make inside a pipeline: never a project's own notebooks or tests.
GENERATED_DIRS = (*RUNTIME_DIRS, STEPS_DIR, DATA_DIR, REFERENCE_DIR)
WORKFLOWS = ".github/workflows"  # at the git root (or the project folder)

# The cells of a step notebook, by tag, and the metadata that names its source notebook:
# ``{"source": notebook}`` on the notebook, ``{"cell", "line_offset", "cache"}`` on a cell.
TAG_HEADER = "nbops-generated"
TAG_PARAMETERS = "parameters"  # papermill's
TAG_SETUP = "nbops-setup"
TAG_LOAD = "nbops-load"
TAG_STEP = "nbops-step"
TAG_SAVE = "nbops-save"
SOURCE_KEY = "nbops"

# The stages promote adds around the notebook's steps.
DATA_STAGE = "validate_data"
MODEL_STAGE = "validate_model"
DEPLOY_STAGE = "deploy"


def step_notebook(position: int, step: str) -> str:
    """``steps/02_train.ipynb``: numbered in run order (1-based) so a listing reads as the DAG."""
    return f"{STEPS_DIR}/{position:02d}_{step}.ipynb"


def artifacts_dir(step: str) -> str:
    return f"{ARTIFACTS_DIR}/{step}"


def metrics_file(step: str) -> str:
    return f"{METRICS_DIR}/{step}.json"


def report_file(stage: str, suffix: str) -> str:
    """``reports/<stage>.<suffix>``: a stage's report (json, md, html)."""
    return f"{REPORTS_DIR}/{stage}.{suffix}"
