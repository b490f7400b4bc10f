"""The warm executor of ``nbops run``: pipeline stages at the speed of the notebook.

A step costs the user what its code costs plus a few tenths of a second, not 5-7 s, while every
step still starts from a fresh interpreter and DVC stays the executor of record.

::

    nbops run ──┬─ Zygote (python -m nbops.executor.zygote): imports the pipeline's heavy modules
                │    once, in the order the stages need them, then forks a fresh child per stage
                ├─ Executor (threads in nbops run): a Unix socket in NBOPS_EXECUTOR; papermill
                │    (imported once) drives each step notebook on a kernel forked by the zygote
                └─ dvc repro ── nbops step / nbops validate: thin clients (client.py) that pass
                     their stdout/stderr and environment to the executor and exit with its status

- Isolation: a child is forked from a zygote that never ran user code, so no variable, module
  mutation or random state of one stage reaches another (numpy's global random state is reseeded
  in each child; ``random`` reseeds itself at fork).
- Records: stages run under ``nbops run`` only spool their runs (``NBOPS_DELIVERY=spool``); the
  parent delivers them, so MLflow is imported by the parent and by the zygote (for the model
  gate), never once per step.
- Fallback: without ``NBOPS_EXECUTOR`` (``dvc repro`` by hand, CI, Airflow), or when the
  executor cannot take a stage (another kernel, the zygote gone), the thin client runs the stage
  itself: the cold path, exactly as before.
"""
