"""Train the `record` preset and report the epoch chosen by validation accuracy.

Run from the project root:
    MNIST_DIR=/path/to/mnist python bench/record_run.py [--epochs N] [--save PATH [--half]]

Prints one line per epoch (training seconds, validation and test accuracy, the machine's
load average: other work slows the epochs down), then the epoch with the best validation
accuracy (ties go to the later epoch) and its test accuracy: the test set never chooses.
The weights of that epoch are kept and, with --save, written as a model file. Last, how
the browser tests' drawn digits (tests/test_browser.py's strokes, rendered the way the
Draw page's canvas draws them) are read by that model and by the shipped one.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script from anywhere

from nets.checkpoint import load_model, save_model  # noqa: E402
from nets.config import PRESETS  # noqa: E402
from nets.data import load_mnist  # noqa: E402
from nets.evaluation import evaluate  # noqa: E402
from nets.preprocess import preprocess  # noqa: E402
from nets.training import train  # noqa: E402
from nets.two_layer_net import TwoLayerNet  # noqa: E402

# The strokes of tests/test_browser.py (canvas pixels), drawn there by mouse on the Draw page.
DRAWN = {
    1: [(140, 40), (140, 240)],
    7: [(70, 60), (210, 60), (120, 250)],
    0: [(140 + 70 * math.sin(2 * math.pi * k / 24), 140 - 100 * math.cos(2 * math.pi * k / 24)) for k in range(25)],
}
BRUSHES = (8, 12, 18, 24, 32)  # the Draw page's brush slider runs 8-32, 18 by default


def canvas(points: list[tuple[float, float]], brush: int) -> np.ndarray:
    """A 280x280 RGBA canvas with one white stroke of width `brush` on black, round ends."""
    image = Image.new("RGBA", (280, 280), (0, 0, 0, 255))
    draw = ImageDraw.Draw(image)
    draw.line(points, fill=(255, 255, 255, 255), width=brush, joint="curve")
    r = brush / 2
    for x, y in (points[0], points[-1]):
        draw.ellipse((x - r, y - r, x + r, y + r), fill=(255, 255, 255, 255))
    return np.asarray(image)


def drawings_read(net: TwoLayerNet) -> tuple[int, float]:
    """How many of the drawn digits (each stroke at every brush) the net reads right, and
    the mean probability it gives the right digit."""
    right, probability = 0, []
    for digit, points in DRAWN.items():
        for brush in BRUSHES:
            probs = net.probabilities(preprocess(canvas(points, brush)).x[None, :])[0]
            right += int(probs.argmax() == digit)
            probability.append(float(probs[digit]))
    return right, float(np.mean(probability))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, help="train this many epochs (default: the preset's)")
    parser.add_argument("--save", metavar="PATH", help="write the chosen epoch's model here")
    parser.add_argument("--half", action="store_true", help="store its weights as float16 (the shipped model)")
    args = parser.parse_args()

    config = PRESETS["record"]
    if args.epochs:
        config = config.replace(epochs=args.epochs)
    data = load_mnist(os.environ.get("MNIST_DIR"), download=False)
    net = TwoLayerNet.from_config(config)
    print(f"record preset: {config}")
    best, best_params, seconds, started = None, None, 0.0, time.perf_counter()
    for m in train(net, data, config):
        seconds += m.seconds
        if best is None or m.val_acc >= best.val_acc:
            best, best_params = m, net.copy_params()
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
        print(
            f"epoch {m.epoch:3d}  {m.seconds:6.2f} s  train loss {m.train_loss:.4f} acc {m.train_acc:.4f}  "
            f"val {m.val_acc:.4f}  test {m.test_acc:.4f}  load {load}",
            flush=True,
        )
    wall = time.perf_counter() - started
    print(
        f"\nchosen by validation: epoch {best.epoch} of {config.epochs}, val {best.val_acc:.4f}, "
        f"test {best.test_acc:.4f} ({best.test_errors} errors); last epoch test {m.test_acc:.4f}"
    )
    print(f"training {seconds:.1f} s ({seconds / config.epochs:.2f} s per epoch), wall {wall:.1f} s with evaluation")
    net.set_params(best_params)
    shipped = load_model(ROOT / "models" / "pretrained.npz").net
    total = len(DRAWN) * len(BRUSHES)
    for name, model in (("record (chosen epoch)", net), ("shipped model", shipped)):
        right, probability = drawings_read(model)
        print(f"drawn digits read right by the {name}: {right} of {total}, mean p(right digit) {probability:.3f}")
    if args.save:
        save(args.save, net, config, data, best.epoch + 1, half=args.half)


def save(path: str, net: TwoLayerNet, config, data, epochs: int, half: bool) -> None:
    """Write the model with the accuracies of the weights as stored: in float16 each weight
    is rounded, so the net is measured again after the rounding."""
    if half:
        net.set_params({name: value.astype(np.float16) for name, value in net.params.items()})
    test, val = evaluate(net, data.x_test, data.y_test), evaluate(net, data.x_val, data.y_val)
    meta = {"epochs_trained": epochs, "test_acc": test.accuracy, "val_acc": val.accuracy}
    save_model(path, net, config, meta, half=half)
    print(f"saved to {path}{' (float16 weights)' if half else ''}: test {test.accuracy:.4f} "
          f"({test.errors} errors), validation {val.accuracy:.4f}")  # fmt: skip


if __name__ == "__main__":
    main()
