"""Command line: python -m nets.train [--preset seed|fast|best] [options]; see --help.

Prints the notebook's table, one line per epoch, then the misclassified count and the
final accuracy; with --json, one JSON object per line instead. Bad arguments or bad data:
exit status 2 and one line on stderr. A diverged run: exit status 1 and one line.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from nets.checkpoint import save_model
from nets.config import ACTIVATIONS, DTYPES, INITS, LR_SCHEDULES, OPTIMIZERS, PRESETS, ConfigError, TrainConfig
from nets.data import DataError, load_mnist
from nets.training import EpochMetrics, TrainingDiverged, check_fits, train
from nets.two_layer_net import TwoLayerNet

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


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr and exit status 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="python -m nets.train", description="Train the two-layer net on MNIST.")
    p.add_argument("--preset", choices=sorted(PRESETS), default="fast", help="starting configuration (default fast)")
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
    p.add_argument("--epochs", type=int, metavar="N")
    p.add_argument("--shuffle", action=argparse.BooleanOptionalAction, default=None, help="shuffle every epoch")
    p.add_argument("--seed", type=int, metavar="N")
    p.add_argument("--dtype", choices=DTYPES)
    p.add_argument("--train-samples", type=int, metavar="N", help="use only the first N training rows")
    p.add_argument("--augment-shift", type=int, metavar="N", help="shift training digits by up to N pixels")
    p.add_argument("--data-dir", metavar="DIR", help="directory with the four MNIST files (default: $MNIST_DIR)")
    p.add_argument("--no-download", action="store_true", help="fail instead of downloading MNIST")
    p.add_argument("--save", metavar="PATH", help="write the trained model (.npz) here")
    p.add_argument("--json", action="store_true", help="one JSON object per line instead of the table")
    return p


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    changes = {field: getattr(args, flag) for flag, field in FLAG_FIELDS.items() if getattr(args, flag) is not None}
    return PRESETS[args.preset].replace(**changes)


def format_epoch(m: EpochMetrics) -> str:
    """The notebook's line, plus the epoch's training time."""
    return (
        f"Epoch: {m.epoch}, Train Error: {m.train_loss:.6f}, Validation Error: {m.val_loss:.6f}, "
        f"Test Accuracy: {m.test_acc:.4f} ({m.seconds:.2f} s)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args)
    except ConfigError as exc:
        parser.error(str(exc))

    def progress(name, done, total):
        if total:
            print(f"\rdownloading {name}: {100 * done // total}%", end="", file=sys.stderr, flush=True)

    try:
        data = load_mnist(args.data_dir, download=not args.no_download, progress=progress)
        check_fits(config, data)
    except (DataError, ValueError) as exc:  # unreadable data, or a config that does not fit it
        parser.exit(2, f"{parser.prog}: error: {exc}\n")
    print(f"MNIST from {data.source}", file=sys.stderr)

    net = TwoLayerNet.from_config(config)
    history: list[EpochMetrics] = []
    status, message = 0, ""
    try:
        for metrics in train(net, data, config):
            history.append(metrics)
            print(json.dumps(metrics.to_dict()) if args.json else format_epoch(metrics), flush=True)
    except TrainingDiverged as exc:
        status, message = 1, f"training diverged: {exc}"
    except KeyboardInterrupt:
        status, message = 130, f"interrupted after {len(history)} epochs"

    if message:
        print(f"{parser.prog}: {message}", file=sys.stderr)
    summarise(history, len(data.y_test), args.json)
    if args.save:
        meta = {"epochs_trained": len(history), "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S")}
        if history:
            meta.update(test_acc=history[-1].test_acc, val_acc=history[-1].val_acc)
        try:
            save_model(args.save, net, config, meta)
        except OSError as exc:
            parser.exit(2, f"{parser.prog}: error: cannot write {args.save} ({exc.strerror or exc})\n")
        print(f"saved the model to {args.save}", file=sys.stderr)
    return status


def summarise(history: list[EpochMetrics], test_size: int, as_json: bool) -> None:
    if not history:
        return
    last = history[-1]
    seconds_per_epoch = sum(m.seconds for m in history) / len(history)
    if as_json:
        final = {
            "final": True,
            "epochs": len(history),
            "test_acc": last.test_acc,
            "misclassified": last.test_errors,
            "seconds_per_epoch": seconds_per_epoch,
        }
        print(json.dumps(final))
    else:
        print(f"Misclassified test images: {last.test_errors} of {test_size}")
        print(f"Test accuracy: {100 * last.test_acc:.2f}%  ({seconds_per_epoch:.3f} s per epoch)")


if __name__ == "__main__":
    sys.exit(main())
