"""Command line: python -m nets.train [--preset seed|fast|best] [options]; see --help.

Prints the notebook's table, one line per epoch, then the misclassified count and the
final accuracy; with --json, one JSON object per line instead. Bad arguments or bad data:
exit status 2 and one line on stderr. A diverged run: exit status 1 and one line.

Every run is recorded in the store of the runs directory (--runs-dir, else $MNIST_RUNS_DIR,
else the XDG data directory; --no-record to skip), each epoch committed before the next
starts; a store that cannot be used costs one line on stderr, never the training.
`--resume RUN_ID --epochs N` continues a recorded run for N more epochs, exactly where
it stopped (its newest weights and optimiser state), appending to its history.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from nets.checkpoint import ModelFileError, save_model
from nets.config import ACTIVATIONS, DTYPES, INITS, LR_SCHEDULES, OPTIMIZERS, PRESETS, ConfigError, TrainConfig
from nets.data import DataError, load_mnist
from nets.jobs import JobError, continue_plan
from nets.optimizers import make_optimizer
from nets.recorder import Recorder
from nets.stopping import PATIENCE, StopRules
from nets.store import RunStore, StoreError
from nets.training import EpochMetrics, TrainControl, TrainingDiverged, check_fits
from nets.two_layer_net import TwoLayerNet

PROG = "python -m nets.train"
# Command-line flag -> TrainConfig field, for the flags that override a preset.
FLAG_FIELDS = {
    "hidden": "hidden_size",
    "activation": "activation",
    "init": "init",
    "init_std": "init_std",
    "optimizer": "optimizer",
    "lr": "learning_rate",
    "momentum": "momentum",
    "weight_decay": "weight_decay",
    "schedule": "lr_schedule",
    "batch_size": "batch_size",
    "epochs": "epochs",
    "shuffle": "shuffle",
    "seed": "seed",
    "dtype": "dtype",
    "train_samples": "train_samples",
    "augment_shift": "augment_shift",
}
# Flags that describe a new run, refused with --resume (a continued run keeps its own).
NEW_RUN_FLAGS = ("preset", *(flag for flag in FLAG_FIELDS if flag != "epochs"), "name", "tag", "notes", "no_record")


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr and exit status 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog=PROG, description="Train the two-layer net on MNIST.")
    p.add_argument("--preset", choices=sorted(PRESETS), help="starting configuration (default fast)")
    p.add_argument("--hidden", type=int, metavar="N", help="hidden units")
    p.add_argument("--activation", choices=ACTIVATIONS)
    p.add_argument("--init", choices=INITS)
    p.add_argument("--init-std", type=float, metavar="X", help="std of the weights for --init std")
    p.add_argument("--optimizer", choices=OPTIMIZERS)
    p.add_argument("--lr", type=float, metavar="X", help="learning rate")
    p.add_argument("--momentum", type=float, metavar="X")
    p.add_argument("--weight-decay", type=float, metavar="X", help="L2 penalty on the weights")
    p.add_argument("--schedule", choices=LR_SCHEDULES, help="learning-rate schedule")
    p.add_argument("--batch-size", type=int, metavar="N")
    p.add_argument("--epochs", type=int, metavar="N", help="epochs to train (with --resume: how many more)")
    p.add_argument("--shuffle", action=argparse.BooleanOptionalAction, default=None, help="shuffle every epoch")
    p.add_argument("--seed", type=int, metavar="N")
    p.add_argument("--dtype", choices=DTYPES)
    p.add_argument("--train-samples", type=int, metavar="N", help="use only the first N training rows")
    p.add_argument("--augment-shift", type=int, metavar="N", help="shift training digits by up to N pixels")
    p.add_argument("--data-dir", metavar="DIR", help="directory with the four MNIST files (default: $MNIST_DIR)")
    p.add_argument("--no-download", action="store_true", help="fail instead of downloading MNIST")
    p.add_argument("--save", metavar="PATH", help="write the trained model (.npz) here")
    p.add_argument("--json", action="store_true", help="one JSON object per line instead of the table")
    r = p.add_argument_group("recording (every run is kept in the runs directory's store)")
    r.add_argument(
        "--runs-dir", metavar="DIR", help="the store (default: $MNIST_RUNS_DIR, else ~/.local/share/mnist-dashboard)"
    )
    r.add_argument("--no-record", action="store_true", help="do not record this run")
    r.add_argument("--name", help="the run's name in the store (default: run N)")
    r.add_argument("--tag", action="append", default=[], metavar="TAG", help="a tag for the run (repeatable)")
    r.add_argument("--notes", help="free text kept with the run")
    r.add_argument("--resume", type=int, metavar="RUN_ID", help="continue this recorded run for --epochs N more epochs")
    s = p.add_argument_group("stop rules (the final --json object says which one stopped the run: stopped_by)")
    s.add_argument(
        "--patience",
        type=int,
        metavar="N",
        help="stop after N epochs without a better validation loss, keeping the best epoch's weights",
    )
    s.add_argument("--time-budget", type=float, metavar="SECONDS", help="stop after this many seconds of training")
    s.add_argument("--target-val-acc", type=float, metavar="X", help="stop once the validation accuracy reaches X")
    return p


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    changes = {field: getattr(args, flag) for flag, field in FLAG_FIELDS.items() if getattr(args, flag) is not None}
    return PRESETS[args.preset or "fast"].replace(**changes)


def check_resume_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> str:
    """Why these arguments cannot continue a run, or "" when they can."""
    given = [flag for flag in NEW_RUN_FLAGS if getattr(args, flag) != parser.get_default(flag)]
    if given:
        return f"--{given[0].replace('_', '-')} cannot be used with --resume: a continued run keeps its settings"
    if args.epochs is None or args.epochs < 1:
        return "--resume needs --epochs N, the number of epochs to add (at least 1)"
    return ""


class DownloadProgress:
    """The download's percentage on one stderr line, rewritten in place; `end_line()`
    finishes that line, so that what is printed next (an error) starts on its own."""

    def __init__(self):
        self.open = False

    def __call__(self, name: str, done: int, total: int | None) -> None:
        if total:
            print(f"\rdownloading {name}: {100 * done // total}%", end="", file=sys.stderr, flush=True)
            self.open = True

    def end_line(self) -> None:
        if self.open:
            print(file=sys.stderr, flush=True)
            self.open = False


def save_problem(path: str) -> str:
    """Why the model could not be saved to `path` ("" when it can be): checked before training."""
    target = Path(path)
    folder = target.parent
    if target.is_dir():
        return f"cannot save the model to {path}: it is a directory"
    if not folder.is_dir():
        return f"cannot save the model to {path}: no directory {folder}"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"cannot save the model to {path}: the directory {folder} is not writable"
    if target.exists() and not os.access(target, os.W_OK):
        return f"cannot save the model to {path}: the file exists and is not writable"
    return ""


def format_epoch(m: EpochMetrics) -> str:
    """The notebook's line, plus the epoch's training time."""
    return (
        f"Epoch: {m.epoch}, Train Error: {m.train_loss:.6f}, Validation Error: {m.val_loss:.6f}, "
        f"Test Accuracy: {m.test_acc:.4f} ({m.seconds:.2f} s)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)

    def fail(message: str):
        parser.exit(2, f"{parser.prog}: error: {message}\n")

    store, plan = None, None
    if args.resume is not None:
        if why := check_resume_args(parser, args):
            parser.error(why)
        try:
            store = RunStore(args.runs_dir)
            plan = continue_plan(store, args.resume, args.epochs)
        except (StoreError, JobError, ModelFileError, ConfigError) as exc:
            fail(str(exc))
        except KeyError as exc:  # no such run
            fail(exc.args[0])
        config = plan.config
    else:
        try:
            config = config_from_args(args)
        except ConfigError as exc:
            parser.error(str(exc))

    try:
        rules = StopRules(patience=args.patience, time_budget=args.time_budget, target_val_acc=args.target_val_acc)
    except ValueError as exc:
        parser.error(str(exc))

    if args.save and (why := save_problem(args.save)):
        fail(why)  # before the data and the training: a run must not be lost to a typo in the path

    progress = DownloadProgress()
    try:
        data = load_mnist(args.data_dir, download=not args.no_download, progress=progress)
        check_fits(config, data)
    except (DataError, ValueError) as exc:  # unreadable data, or a config that does not fit it
        progress.end_line()
        fail(str(exc))
    progress.end_line()
    print(f"MNIST from {data.source}", file=sys.stderr)

    optimizer = make_optimizer(config.optimizer, config.learning_rate, config.momentum, config.weight_decay)
    if plan is not None:
        try:
            store.continue_run(args.resume, config)
        except StoreError as exc:
            fail(str(exc))
        net, history = plan.loaded.net, list(plan.history)
        optimizer.load_state(plan.loaded.optimizer_state)
        recorder = Recorder(store, args.resume)
        print(f"continuing run {args.resume} ({len(history)} epochs done) in {store.path}", file=sys.stderr)
    else:
        net, history = TwoLayerNet.from_config(config), []
        recorder = new_recorder(args, config)
    return train_and_report(parser, args, data, config, net, optimizer, history, recorder, rules)


def new_recorder(args: argparse.Namespace, config: TrainConfig) -> Recorder:
    """A Recorder for a new run in the store, or one that records nothing (--no-record,
    or a store that cannot be used: one line says why, and the training goes on)."""
    if args.no_record:
        return Recorder(None, None)
    try:
        store = RunStore(args.runs_dir)
        run_id = store.create_run(config, source="cli", name=args.name or "", tags=args.tag, notes=args.notes or "")
    except StoreError as exc:
        print(f"{PROG}: not recording this run: {exc}", file=sys.stderr)
        return Recorder(None, None)
    print(f"recording as run {run_id} in {store.path}", file=sys.stderr)
    return Recorder(store, run_id)


def train_and_report(parser, args, data, config, net, optimizer, history, recorder: Recorder, rules=None) -> int:
    """Train from `len(history)` epochs on, print each epoch (with its health), the summary,
    and the exit status."""
    status, message = 0, ""
    control, health, start = TrainControl(), [], len(history)
    told = []  # the recording failure, once printed

    def tell_recording_error() -> None:
        if recorder.error and not told:
            print(f"{parser.prog}: {recorder.error}", file=sys.stderr, flush=True)
            told.append(recorder.error)

    try:
        for metrics in recorder.train(net, data, config, optimizer=optimizer, start_epoch=len(history),
                                      control=control, on_health=health.append, stop_rules=rules):  # fmt: skip
            history.append(metrics)
            line = json.dumps({**metrics.to_dict(), "health": health[-1].to_dict()}) if args.json else None
            print(line or format_epoch(metrics), flush=True)
            tell_recording_error()
    except TrainingDiverged as exc:
        status, message = 1, f"training diverged: {exc}"
    except KeyboardInterrupt:
        # Between epochs the interrupt strikes here, after the recorder's loop was closed
        # (which records "stopped"): it was Ctrl-C all the same.
        recorder.status("interrupted", "stopped by Ctrl-C")
        status, message = 130, f"interrupted after {len(history)} epochs"

    if control.stop_message and not message:
        print(f"{parser.prog}: {control.stop_message}", file=sys.stderr)
    if message:
        print(f"{parser.prog}: {message}", file=sys.stderr)
    tell_recording_error()
    kept = kept_epochs(history, control, start)
    summarise(history, len(data.y_test), args.json, recorder.run_id, control.stopped_by or None, kept)
    if args.save:
        meta = {"epochs_trained": kept, "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S")}
        if history:
            meta.update(test_acc=history[kept - 1].test_acc, val_acc=history[kept - 1].val_acc)
        try:
            save_model(args.save, net, config, meta)  # exactly that path, through a temporary file
        except OSError as exc:
            kept = f"; the run is kept in the store as run {recorder.run_id}" if recorder.run_id is not None else ""
            parser.exit(2, f"{parser.prog}: error: cannot write {args.save} ({exc.strerror or exc}){kept}\n")
        print(f"saved the model to {args.save}", file=sys.stderr)
    return status


def kept_epochs(history: list[EpochMetrics], control: TrainControl, start: int = 0) -> int:
    """Epochs behind the net's weights now: early stopping put back the best epoch's
    (the first best of the epochs trained from `start`, as the StopWatch keeps it)."""
    if control.stopped_by == PATIENCE and history[start:]:
        best = min(history[start:], key=lambda m: m.val_loss)
        return best.epoch + 1
    return len(history)


def summarise(history: list[EpochMetrics], test_size: int, as_json: bool, run_id: int | None = None,
              stopped_by: str | None = None, kept: int | None = None) -> None:  # fmt: skip
    """The last lines: the kept weights' results (after early stopping, the best epoch's)."""
    if not history:
        if as_json and stopped_by:
            print(json.dumps({"final": True, "epochs": 0, "stopped_by": stopped_by, "run_id": run_id}))
        return
    last = history[(kept or len(history)) - 1]
    seconds_per_epoch = sum(m.seconds for m in history) / len(history)
    if as_json:
        final = {
            "final": True,
            "epochs": len(history),
            "test_acc": last.test_acc,
            "misclassified": last.test_errors,
            "seconds_per_epoch": seconds_per_epoch,
            "run_id": run_id,  # None when the run was not recorded
            "stopped_by": stopped_by,  # patience | time_budget | target_val_acc, None when it ran its epochs
            "best_epoch": kept if stopped_by == PATIENCE else None,  # the 1-based epoch whose weights were kept
        }
        print(json.dumps(final))
    else:
        print(f"Misclassified test images: {last.test_errors} of {test_size}")
        print(f"Test accuracy: {100 * last.test_acc:.2f}%  ({seconds_per_epoch:.3f} s per epoch)")


if __name__ == "__main__":
    sys.exit(main())
