"""Command line for the store: python -m nets.runs list|show|export|import|delete; see --help.

Works on the runs directory's store (--runs-dir, else $MNIST_RUNS_DIR, else the XDG data
directory), the one `python -m nets.train` and the dashboard record into. --json prints
one JSON value instead of text. Bad input (an unknown run, a bad bundle, a store that
cannot be opened): exit status 2 and one line on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from nets.bundle import MAX_BUNDLE_BYTES, bundle_bytes, import_bundle, read_bundle
from nets.checkpoint import ModelFileError
from nets.store import RunRecord, RunStore, StoreError, write_atomically
from nets.train import OneLineParser, format_epoch

PROG = "python -m nets.runs"


def store_options(after_command: bool) -> argparse.ArgumentParser:
    """--runs-dir and --json, accepted before or after the command. After it they default
    to SUPPRESS, so that they keep a value given before it."""
    default = {"default": argparse.SUPPRESS} if after_command else {}
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--runs-dir", metavar="DIR", help="the store (default: as python -m nets.train)", **default)
    common.add_argument("--json", action="store_true", help="print JSON instead of text", **default)
    return common


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog=PROG, description="List, show, export, import and delete recorded runs.",
                      parents=[store_options(after_command=False)])  # fmt: skip
    common = store_options(after_command=True)
    commands = p.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=OneLineParser)
    commands.add_parser("list", parents=[common], help="every run, newest first")
    show = commands.add_parser("show", parents=[common], help="one run and its history")
    show.add_argument("run_id", type=int, metavar="RUN_ID")
    export = commands.add_parser("export", parents=[common], help="one run as a single .npz bundle")
    export.add_argument("run_id", type=int, metavar="RUN_ID")
    export.add_argument("-o", "--output", metavar="PATH", help="where to write it (default: run-RUN_ID.npz)")
    imported = commands.add_parser("import", parents=[common], help="a bundle or a model file as a new run")
    imported.add_argument("path", metavar="PATH")
    imported.add_argument("--name", help="the new run's name (default: the bundle's)")
    delete = commands.add_parser("delete", parents=[common], help="runs and their weight files")
    delete.add_argument("run_ids", type=int, nargs="+", metavar="RUN_ID")
    delete.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    return p


def summary(r: RunRecord) -> dict:
    """The row `list` prints for a run: who it is, its key settings, its results."""
    c = r.config
    return {
        "run_id": r.run_id,
        "name": r.name,
        "status": r.status,
        "source": r.source,
        "hidden": c.hidden_size,
        "optimizer": c.optimizer,
        "lr": c.learning_rate,
        "batch": c.batch_size,
        "epochs": c.epochs,
        "epochs_done": r.epochs_done,
        "best_val_acc": r.best_val_acc,
        "test_acc": r.test_acc,
        "train_seconds": r.train_seconds,
        "tags": list(r.tags),
        "created": r.created,
    }


def list_text(records: list[RunRecord]) -> list[str]:
    if not records:
        return ["no runs yet"]
    header = f"{'id':>5}  {'name':<20} {'status':<11} {'source':<9} {'hidden':>6} {'optim':<8} {'lr':>8} "
    header += f"{'batch':>5} {'epochs':>7} {'best val':>8} {'test':>7} {'time':>8}"
    lines = [header]
    for r in records:
        c, epochs = r.config, f"{r.epochs_done}/{r.config.epochs}"
        lines.append(
            f"{r.run_id:>5}  {r.name[:20]:<20} {r.status:<11} {r.source:<9} {c.hidden_size:>6} {c.optimizer:<8} "
            f"{c.learning_rate:>8.2g} {c.batch_size:>5} {epochs:>7} {_percent(r.best_val_acc):>8} "
            f"{_percent(r.test_acc):>7} {r.train_seconds:>7.1f}s"
        )
    return lines


def show_text(r: RunRecord, history) -> list[str]:
    settings = ", ".join(f"{k}={v}" for k, v in r.config.to_dict().items())
    lines = [
        f"run {r.run_id}: {r.name}",
        f"status: {r.status}" + (f" ({r.message})" if r.message else ""),
        f"source: {r.source}, created {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(r.created))}",
        f"settings: {settings}",
    ]
    if r.tags:
        lines.append(f"tags: {', '.join(r.tags)}")
    if r.notes:
        lines.append(f"notes: {' '.join(r.notes.split())}")
    return lines + [format_epoch(m) for m in history]


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)

    def fail(message: str):
        parser.exit(2, f"{PROG}: error: {message}\n")

    def out(text_lines: list[str], value) -> None:
        print(json.dumps(value) if args.json else "\n".join(text_lines))

    try:
        store = RunStore(args.runs_dir)
        if args.command == "list":
            records = store.runs()
            out(list_text(records), [summary(r) for r in records])
        elif args.command == "show":
            record, history = store.run(args.run_id), store.history(args.run_id)
            out(show_text(record, history), {**summary(record), "message": record.message, "notes": record.notes,
                                             "config": record.config.to_dict(),
                                             "history": [m.to_dict() for m in history]})  # fmt: skip
        elif args.command == "export":
            path = Path(args.output or f"run-{args.run_id}.npz")
            data = bundle_bytes(store, args.run_id)
            try:
                write_atomically(path, lambda f: f.write(data))
            except OSError as exc:
                fail(f"cannot write {path} ({exc.strerror or exc})")
            out(
                [f"exported run {args.run_id} to {path} ({len(data)} bytes)"],
                {"run_id": args.run_id, "path": str(path)},
            )
        elif args.command == "import":
            path = Path(args.path)
            try:
                if path.stat().st_size > MAX_BUNDLE_BYTES:  # before reading it all into memory
                    fail(f"{path.name}: {path.stat().st_size} bytes, larger than any run bundle this app makes")
                data = path.read_bytes()
            except OSError as exc:
                fail(f"{path}: cannot read it ({exc.strerror or exc})")
            run_id = import_bundle(store, read_bundle(data, name=path.name), name=args.name)
            out([f"imported {path} as run {run_id}"], {"run_id": run_id, "path": str(path)})
        else:
            return delete(store, args, fail, out)
    except KeyError as exc:  # an unknown run id
        fail(exc.args[0])
    except (StoreError, ModelFileError) as exc:
        fail(str(exc))
    return 0


def delete(store: RunStore, args, fail, out) -> int:
    """Delete runs after a yes (or --yes); a run training now is refused. Exit 1: declined."""
    records = [store.run(run_id) for run_id in args.run_ids]  # KeyError names an unknown one
    for r in records:
        if r.live:
            fail(f"run {r.run_id} is {r.status} (its process is alive): stop it before deleting it")
    if not args.yes:
        names = ", ".join(f"{r.run_id} ({r.name})" for r in records)
        files = sum(len(store.snapshots(r.run_id)) for r in records)
        print(f"delete run {names} and {files} weight files? [y/N] ", end="", file=sys.stderr, flush=True)
        answer = sys.stdin.readline().strip().lower()
        if not sys.stdin.isatty():
            print(file=sys.stderr)  # the answer was not echoed: end the prompt's line
        if answer not in ("y", "yes"):
            print(f"{PROG}: nothing deleted", file=sys.stderr)
            return 1
    for r in records:
        store.delete(r.run_id)
    out([f"deleted run {r.run_id} ({r.name})" for r in records], {"deleted": [r.run_id for r in records]})
    return 0


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


if __name__ == "__main__":
    sys.exit(main())
