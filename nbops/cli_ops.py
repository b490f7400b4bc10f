"""``nbops serve|deploy|monitor|export``: parsing for the commands that take a promoted
pipeline past ``nbops run`` (the champion as a service, delivered, watched, orchestrated)."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_export_parser", "add_serve_parsers"]


def _export_airflow(args: argparse.Namespace) -> int:
    from nbops.export.airflow import export_airflow

    result = export_airflow(
        args.dir,
        args.out,
        dag_id=args.dag_id,
        pipeline_dir=args.pipeline_dir,
        kernel=args.kernel,
        schedule=args.schedule,
    )
    print(result.text())
    return 0


def add_export_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`nbops export airflow DIR`: a promoted pipeline for an orchestrator."""
    export = sub.add_parser("export", help="a promoted pipeline for an orchestrator (Airflow)")
    targets = export.add_subparsers(dest="export_command", required=True, metavar="TARGET")
    airflow = targets.add_parser("airflow", help="write an Airflow DAG: one task per step")
    airflow.add_argument("dir", nargs="?", default=".", help="pipeline folder (default .)")
    airflow.add_argument("--out", "-o", help="DAG file (default DIR/airflow_dag.py)")
    airflow.add_argument("--dag-id", help="default: the pipeline's name")
    airflow.add_argument("--pipeline-dir", help="the folder's path on the workers (default: here)")
    airflow.add_argument("--kernel", help="Jupyter kernel for the steps (default: the notebook's)")
    airflow.add_argument("--schedule", help="cron expression or preset (default: manual)")
    airflow.set_defaults(handler=_export_airflow)


def _serve(args: argparse.Namespace) -> int:
    from nbops.serve.server import Options, run_server
    from nbops.serve.target import resolve

    options = Options(
        args.host, args.port, args.poll, not args.no_log, args.exit_with, not args.no_standby
    )
    return run_server(resolve(args.target, args.alias), options, echo=_flushed)


def _deploy(args: argparse.Namespace) -> int:
    from nbops.serve.deploy import deploy

    print(deploy(Path(args.dir)).text())  # a failed delivery raises ServingError (exit 10)
    return 0


def _monitor(args: argparse.Namespace) -> int:
    from nbops.monitor import monitor

    result = monitor(args.target, days=args.days, record=not args.no_record)
    print(result.text())
    return 0


def _flushed(text: str) -> None:
    print(text, flush=True)  # a server's lines must reach a log file as they happen


def add_serve_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`nbops serve|deploy|monitor`: the champion as a service, delivered and watched."""
    serve = sub.add_parser("serve", help="serve the champion (mlflow models serve + a front)")
    serve.add_argument("target", nargs="?", default=".", help="pipeline folder or model name")
    serve.add_argument("--port", "-p", type=int, default=5005, help="default 5005; 0: any")
    serve.add_argument("--host", default="127.0.0.1", help="default 127.0.0.1")
    serve.add_argument("--alias", default="champion", help="the alias to follow (champion)")
    serve.add_argument("--poll", type=float, default=5.0, help="seconds between alias checks")
    serve.add_argument("--no-log", action="store_true", help="do not log requests")
    serve.add_argument(
        "--no-standby", action="store_true", help="stop a replaced version at once (less memory)"
    )
    serve.add_argument("--exit-with", type=int, help=argparse.SUPPRESS)  # the notebook's pid
    serve.set_defaults(handler=_serve)

    deploy = sub.add_parser("deploy", help="the deploy stage: deliver the champion, smoke-test it")
    deploy.add_argument("dir", nargs="?", default=".", help="pipeline folder (default .)")
    deploy.set_defaults(handler=_deploy)

    monitor = sub.add_parser("monitor", help="drift and live metric of what the server saw")
    monitor.add_argument("target", nargs="?", default=".", help="pipeline folder or model name")
    monitor.add_argument("--days", type=int, help="read the log of the last N days (default 7)")
    monitor.add_argument("--no-record", action="store_true", help="no MLflow metrics")
    monitor.set_defaults(handler=_monitor)
