"""What recording a run costs per epoch of the `seed` preset (the promise: at most 3% more).

Run from the project root, alone on the machine (under `flock /tmp/browser.lock`):
    MNIST_DIR=/path/to/mnist python bench/bench_recorded.py [--epochs 10] [--preset seed]

Two runs of the same config train side by side in this process, one epoch of each in turn
(so a change in the machine's load hits both): one through the Recorder into a store in a
temporary directory, as the dashboard and the command line record every run (each epoch's
metrics, weights and optimiser state committed, the per-batch loss trace, the health
figures), one with the bare training loop. Printed: the median wall time of an epoch of
each (training, evaluation and, for the recorded one, its commit), their ratio, and the
store's size per epoch.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent.parent), str(Path(__file__).resolve().parent)]

from bench_health import cpu_name  # noqa: E402

from nets.config import PRESETS  # noqa: E402
from nets.data import load_mnist  # noqa: E402
from nets.recorder import Recorder  # noqa: E402
from nets.store import RunStore  # noqa: E402
from nets.training import train  # noqa: E402
from nets.two_layer_net import TwoLayerNet  # noqa: E402


def timed(epochs) -> float:
    started = time.perf_counter()
    next(epochs)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--preset", default="seed", choices=sorted(PRESETS))
    args = parser.parse_args()
    config = PRESETS[args.preset].replace(epochs=args.epochs)
    data = load_mnist()
    with tempfile.TemporaryDirectory(prefix="bench-recorded-") as runs:
        store = RunStore(runs)
        run_id = store.create_run(config, source="cli")
        recorded = Recorder(store, run_id).train(
            TwoLayerNet.from_config(config), data, config, on_health=lambda h: None
        )
        bare = train(TwoLayerNet.from_config(config), data, config)
        times: dict[str, list[float]] = {"recorded": [], "bare": []}
        for epoch in range(args.epochs):
            order = (
                (("recorded", recorded), ("bare", bare)) if epoch % 2 == 0 else (("bare", bare), ("recorded", recorded))
            )
            for name, epochs in order:
                times[name].append(timed(epochs))
        for epochs in (recorded, bare):  # let both end as a run ends (the recorder marks it finished)
            for _ in epochs:
                pass
        size = sum(f.stat().st_size for f in Path(runs).rglob("*") if f.is_file())
    first_out = {name: values[1:] for name, values in times.items()}  # the first epoch pays for warming up
    recorded_s, bare_s = (statistics.median(first_out[name]) for name in ("recorded", "bare"))
    ratios = [r / b for r, b in zip(first_out["recorded"], first_out["bare"], strict=True)]
    print(f"CPU: {cpu_name()}; preset {args.preset}, {args.epochs} epochs each, interleaved, the first left out")
    print(f"epoch (train + eval), median: {recorded_s:.3f} s recorded, {bare_s:.3f} s bare")
    verdict = "ok" if recorded_s / bare_s <= 1.03 else "MISSED"
    print(
        f"recorded / bare: {recorded_s / bare_s:.3f} "
        f"(median of the epochs' own ratios {statistics.median(ratios):.3f}); target <= 1.03 {verdict}"
    )
    print(f"the store: {size / 1e6:.1f} MB for {args.epochs} epochs")


if __name__ == "__main__":
    main()
