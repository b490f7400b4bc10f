"""``nbops`` on the command line: argument parsing only; the work is in :mod:`nbops.commands`.

Every :class:`~nbops.errors.NbopsError` is printed as its message and fix (no traceback) and
exits with its class's code.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from nbops import __version__
from nbops.cli_ops import add_export_parser, add_serve_parsers
from nbops.errors import NbopsError, StoreError

if TYPE_CHECKING:
    from nbops.session import Session


def _runs(args: argparse.Namespace) -> int:
    print(_commands().runs(_session(), args.experiment, args.format, args.limit))
    return 0


def _show(args: argparse.Namespace) -> int:
    print(_commands().show(_session(), args.run, args.format))
    return 0


def _diff(args: argparse.Namespace) -> int:
    print(_commands().diff(_session(), args.run_a, args.run_b, args.format))
    return 0


def _sync(args: argparse.Namespace) -> int:
    text, ok = _commands().sync(_session(), args.retry_quarantined, args.store)
    print(text)
    return 0 if ok else StoreError.exit_code


def _promote(args: argparse.Namespace) -> int:
    from nbops.promote import promote

    result = promote(
        args.notebook, out=args.out, split=args.split, force=args.force, deploy=args.deploy
    )
    print(result.text())
    if args.check:
        return _run_folder(result.out_dir, check=True, force=False)
    return 0


def _run(args: argparse.Namespace) -> int:
    return _run_folder(args.dir, check=args.check, force=args.force, warm=not args.cold)


def _run_folder(folder: object, check: bool, force: bool, warm: bool = True) -> int:
    from nbops.pipeline.run import run_pipeline

    result = run_pipeline(str(folder), check=check, force=force, warm=warm)  # prints progress
    return 0 if result.ok else 1


def _retrain(args: argparse.Namespace) -> int:
    from nbops.pipeline.retrain import retrain

    return 0 if retrain(args.dir, force=args.force).ok else 1


def _step(args: argparse.Namespace) -> int:
    from nbops.pipeline.step import step_command

    return step_command(args.notebook, sys.stdout, sys.stderr) or 0


def _demo(args: argparse.Namespace) -> int:
    from nbops.demo import run_demo

    print(run_demo(args.dir))
    return 0


def _model_list(args: argparse.Namespace) -> int:
    print(_commands().model_list(_session(), args.name, args.format))
    return 0


def _model_register(args: argparse.Namespace) -> int:
    text = _commands().model_register(
        _session(), args.run, args.name, args.artifact_path, args.alias, args.reason
    )
    print(text)
    return 0


def _model_promote(args: argparse.Namespace) -> int:
    text = _commands().model_promote(
        _session(), args.name, args.version, args.challenger, args.reason
    )
    print(text)
    return 0


def _model_rollback(args: argparse.Namespace) -> int:
    print(_commands().model_rollback(_session(), args.name, args.reason))
    return 0


def _add_model_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`nbops model ...`: the registry through MLflow aliases (champion/challenger/previous)."""
    model = sub.add_parser("model", help="registered models: list, register, promote, rollback")
    actions = model.add_subparsers(dest="model_command", required=True, metavar="ACTION")
    reason = argparse.ArgumentParser(add_help=False)
    reason.add_argument("--reason", "-r", default="", help="why (recorded on the versions)")

    listing = actions.add_parser("list", help="versions, aliases, metrics and the latest change")
    listing.add_argument("name", help="registered model name")
    listing.add_argument("--format", "-f", choices=("table", "json"), default="table")
    listing.set_defaults(handler=_model_list)

    register = actions.add_parser(
        "register", parents=[reason], help="register a run's model as a new version"
    )
    register.add_argument("run", help="run id, id prefix (>= 6 chars) or run name")
    register.add_argument("name", help="registered model name (created if missing)")
    register.add_argument("--artifact-path", default="model", help="default: model")
    register.add_argument("--alias", default="challenger", help="default: challenger; '' none")
    register.set_defaults(handler=_model_register)

    promote = actions.add_parser(
        "promote", parents=[reason], help="make a version (or the challenger) the champion"
    )
    promote.add_argument("name", help="registered model name")
    promote.add_argument("version", nargs="?", help="version number (or use --challenger)")
    promote.add_argument("--challenger", action="store_true", help="promote the challenger")
    promote.set_defaults(handler=_model_promote)

    rollback = actions.add_parser(
        "rollback", parents=[reason], help="make the previous champion the champion again"
    )
    rollback.add_argument("name", help="registered model name")
    rollback.set_defaults(handler=_model_rollback)


def _validate_data(args: argparse.Namespace) -> int:
    from nbops.validate.data import validate_data
    from nbops.validate.report import cli_summary

    result = validate_data(Path(args.dir), record=not args.no_record, session=_session())
    print(cli_summary(result))
    return 0


def _validate_model(args: argparse.Namespace) -> int:
    from nbops.validate.model import validate_model

    print(validate_model(Path(args.dir), session=_session()).summary())
    return 0


def _add_validate_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`nbops validate data` (more kinds join the same group): a pipeline's validation stages."""
    validate = sub.add_parser("validate", help="a pipeline's gates: its data, its model")
    kinds = validate.add_subparsers(dest="validate_command", required=True, metavar="WHAT")

    data = kinds.add_parser(
        "data", help="check data files against schema.yaml, measure drift (exit 8: schema skew)"
    )
    data.add_argument("dir", nargs="?", default=".", help="pipeline folder (default .)")
    data.add_argument("--no-record", action="store_true", help="do not record an MLflow run")
    data.set_defaults(handler=_validate_data)

    model = kinds.add_parser(
        "model", help="score the candidate against the champion; register it if it passes"
    )
    model.add_argument("dir", nargs="?", default=".", help="pipeline folder (default .)")
    model.set_defaults(handler=_validate_model)


def _level(args: argparse.Namespace) -> int:
    print(_commands().level(_session(), args.path, "json" if args.json else "text"))
    return 0


def _cache_ls(args: argparse.Namespace) -> int:
    print(_commands().cache_ls(_session(), args.format))
    return 0


def _cache_clear(args: argparse.Namespace) -> int:
    print(_commands().cache_clear(_session(), args.keys))
    return 0


def _add_cache_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`nbops cache ls|clear`: the entries `%%track --cache` stored beside the store."""
    cache = sub.add_parser("cache", help="the %%%%track --cache entries: list or clear them")
    actions = cache.add_subparsers(dest="cache_command", required=True, metavar="ACTION")
    listing = actions.add_parser("ls", help="entries, most recently used first, and the size")
    listing.add_argument("--format", "-f", choices=("table", "json"), default="table")
    listing.set_defaults(handler=_cache_ls)
    clear = actions.add_parser("clear", help="remove every entry, or those of KEY prefixes")
    clear.add_argument("keys", nargs="*", metavar="KEY", help="key prefixes (see `nbops cache ls`)")
    clear.set_defaults(handler=_cache_clear)


def _add_level_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`nbops level [PATH]`: the Level 0/1/2 checklist of a project and its next step."""
    level = sub.add_parser("level", help="MLOps level checklist (Google's 0/1/2), next step")
    level.add_argument("path", nargs="?", default=".", help="project folder (default .)")
    level.add_argument("--json", action="store_true", help="the checklist as JSON")
    level.set_defaults(handler=_level)


def _add_run_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`nbops runs|show|diff|sync`: the tracked runs in the store."""
    runs = sub.add_parser("runs", help="list tracked runs, newest first")
    runs.add_argument("--experiment", "-e", help="only this experiment (default: all)")
    runs.add_argument("--format", "-f", choices=_commands().FORMATS, default="table")
    runs.add_argument("--limit", "-n", type=int, default=50, help="at most N runs (default 50)")
    runs.set_defaults(handler=_runs)

    show = sub.add_parser("show", help="one run: params, metrics, data, code, context")
    show.add_argument("run", help="run id, id prefix (>= 6 chars), record id or run name")
    show.add_argument("--format", "-f", choices=("text", "json"), default="text")
    show.set_defaults(handler=_show)

    diff = sub.add_parser("diff", help="what changed between two runs")
    diff.add_argument("run_a")
    diff.add_argument("run_b")
    diff.add_argument("--format", "-f", choices=("text", "json"), default="text")
    diff.set_defaults(handler=_diff)

    sync = sub.add_parser("sync", help="deliver runs kept locally after a store failure")
    sync.add_argument(
        "--retry-quarantined",
        action="store_true",
        help="also retry records set aside because MLflow refused them (after fixing the cause)",
    )
    sync.add_argument(
        "--store",
        metavar="URI",
        help="deliver to this tracking store instead of the one each record names "
        "(when the store a run was recorded for was misconfigured)",
    )
    sync.set_defaults(handler=_sync)


def _add_pipeline_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`nbops promote|run|step|demo`: from a tagged notebook to a DVC pipeline, and running it."""
    promote = sub.add_parser("promote", help="turn a tagged notebook into a DVC pipeline")
    promote.add_argument("notebook", help="the tagged notebook (.ipynb)")
    promote.add_argument("--out", help="output folder (default pipelines/<notebook stem>/)")
    promote.add_argument("--split", choices=("tags", "headings"), default="tags")
    promote.add_argument("--force", action="store_true", help="overwrite hand-edited files")
    promote.add_argument("--check", action="store_true", help="then run it and compare metrics")
    promote.add_argument(
        "--deploy",
        action=argparse.BooleanOptionalAction,
        help="add a deploy stage after the model gate (default: keep what the folder has)",
    )
    promote.set_defaults(handler=_promote)

    run = sub.add_parser("run", help="run a promoted pipeline (dvc repro), tracking every step")
    run.add_argument("dir", nargs="?", default=".", help="pipeline folder (default .)")
    run.add_argument("--check", action="store_true", help="compare metrics with the notebook")
    run.add_argument("--force", action="store_true", help="re-run every step")
    run.add_argument(
        "--cold",
        action="store_true",
        help="every stage in a new process, as a plain `dvc repro` (no warm executor)",
    )
    run.set_defaults(handler=_run)

    retrain = sub.add_parser("retrain", help="run the pipeline if its data changed (a trigger)")
    retrain.add_argument("dir", nargs="?", default=".", help="pipeline folder (default .)")
    retrain.add_argument("--force", action="store_true", help="retrain even if nothing changed")
    retrain.set_defaults(handler=_retrain)

    step = sub.add_parser("step", help="execute one step notebook (what dvc.yaml calls)")
    step.add_argument("notebook")
    step.set_defaults(handler=_step)

    demo = sub.add_parser("demo", help="run the example notebook end to end and list its runs")
    demo.add_argument("--dir", default="demo", help="workspace folder (default ./demo)")
    demo.set_defaults(handler=_demo)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nbops", description="From MLOps Level 0 to Level 1 without leaving the notebook."
    )
    parser.add_argument("--version", action="version", version=f"nbops {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_run_parsers(sub)
    _add_pipeline_parsers(sub)
    _add_model_parser(sub)
    _add_level_parser(sub)
    _add_cache_parser(sub)
    _add_validate_parser(sub)
    add_export_parser(sub)
    add_serve_parsers(sub)
    return parser


def _session() -> Session:
    """A session for the commands that read or write the store: configured from the current
    folder's project (commands that ignore it never build one)."""
    from nbops.session import Session

    return Session()


def _commands() -> ModuleType:
    """The work behind the commands, imported when a command runs (not for a thin client)."""
    from nbops import commands

    return commands


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    from nbops.executor.client import delegate

    try:
        delegated = delegate(words)  # a stage of `nbops run`: its warm executor runs it
    except KeyboardInterrupt:
        print("nbops: interrupted", file=sys.stderr)
        return 130
    if delegated is not None:
        return delegated
    args = build_parser().parse_args(words)
    try:
        return int(args.handler(args))
    except NbopsError as exc:
        print(f"nbops: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("nbops: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
