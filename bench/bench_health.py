"""What the health figures cost per epoch of the `seed` preset (the promise: at most 3%).

Run from the project root, alone on the machine (under `flock /tmp/browser.lock`):
    MNIST_DIR=/path/to/mnist python bench/bench_health.py [--epochs 8]

Two runs of the same config train side by side in this process, one epoch of each in
turn (so a change in the machine's load hits both): one measures its health, one does
not. Printed: the health's own clock (EpochHealth.seconds, the extra work it timed) as a
share of the epoch (training + evaluation), and the ratio of the two runs' median epoch
times, which also catches costs the health clock would miss.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere

from nets.config import PRESETS  # noqa: E402
from nets.data import load_mnist  # noqa: E402
from nets.training import train  # noqa: E402
from nets.two_layer_net import TwoLayerNet  # noqa: E402


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--preset", default="seed")
    args = parser.parse_args()
    data = load_mnist(download=False)
    config = PRESETS[args.preset].replace(epochs=args.epochs)
    health = []
    watched = train(TwoLayerNet.from_config(config), data, config, on_health=health.append)
    plain = train(TwoLayerNet.from_config(config), data, config)
    with_health, without = [], []
    for epoch in range(args.epochs):  # which one goes first alternates: the second may find warmer caches
        first, second = (watched, plain) if epoch % 2 else (plain, watched)
        a, b = next(first), next(second)
        if first is plain:
            a, b = b, a
        with_health.append(a.seconds + a.eval_seconds)
        without.append(b.seconds + b.eval_seconds)
    measured = [h.seconds for h in health]
    share = [h / e for h, e in zip(measured, with_health, strict=True)]
    ratio = statistics.median(with_health) / statistics.median(without)
    print(f"CPU: {cpu_name()}, preset {args.preset}, {args.epochs} epochs each")
    print(f"epoch (train + eval), median: {statistics.median(with_health):.3f} s with health, "
          f"{statistics.median(without):.3f} s without")  # fmt: skip
    print(f"health's own clock: median {statistics.median(measured) * 1000:.1f} ms an epoch, "
          f"{statistics.median(share):.2%} of an epoch (max {max(share):.2%})")  # fmt: skip
    print(f"median epoch with / without health: {ratio:.3f}")


if __name__ == "__main__":
    main()
