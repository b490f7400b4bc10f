"""``nbops`` on the command line: argument parsing only; the work is in :mod:`nbops.commands`.

Every :class:`~nbops.errors.NbopsError` is printed as its message and fix (no traceback) and
exits with its class's code.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from nbops import __version__
from nbops.errors import NbopsError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nbops", description="From MLOps Level 0 to Level 1 without leaving the notebook."
    )
    parser.add_argument("--version", action="version", version=f"nbops {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    runs = sub.add_parser("runs", help="list tracked runs, newest first")
    runs.add_argument("--experiment", "-e", help="only this experiment (default: all)")
    runs.add_argument("--format", "-f", choices=("table", "json", "csv"), default="table")
    runs.add_argument("--limit", "-n", type=int, default=50, help="at most N runs (default 50)")

    show = sub.add_parser("show", help="one run: params, metrics, data, code, context")
    show.add_argument("run", help="run id, id prefix (>= 6 chars), record id or run name")
    show.add_argument("--format", "-f", choices=("text", "json"), default="text")

    diff = sub.add_parser("diff", help="what changed between two runs")
    diff.add_argument("run_a")
    diff.add_argument("run_b")
    diff.add_argument("--format", "-f", choices=("text", "json"), default="text")

    sub.add_parser("sync", help="deliver runs kept locally after a store failure")

    demo = sub.add_parser("demo", help="run the example notebook end to end and list its runs")
    demo.add_argument("--dir", default="demo", help="workspace folder (default ./demo)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _dispatch(args)
    except NbopsError as exc:
        print(f"nbops: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("nbops: interrupted", file=sys.stderr)
        return 130


def _dispatch(args: argparse.Namespace) -> int:
    from nbops import commands
    from nbops.session import Session

    session = Session()
    if args.command == "runs":
        print(commands.runs(session, args.experiment, args.format, args.limit))
    elif args.command == "show":
        print(commands.show(session, args.run, args.format))
    elif args.command == "diff":
        print(commands.diff(session, args.run_a, args.run_b, args.format))
    elif args.command == "sync":
        text, ok = commands.sync(session)
        print(text)
        return 0 if ok else 4
    elif args.command == "demo":
        from nbops.demo import run_demo

        print(run_demo(args.dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
