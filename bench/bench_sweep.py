"""Sweeps: parallel efficiency, and what a ten-minute TPE + ASHA search finds.

Run from the project root:
    MNIST_DIR=/path/to/mnist python bench/bench_sweep.py [--part efficiency|search|all] [--minutes 10]

efficiency: a fixed grid of 8 trials (the `fast` preset as it is, 5 epochs each, hidden units
    64/128/256/512 x learning rate 1e-3/3e-3) run by `python -m nets.sweep` with 2 local
    workers, against the same 8 configs trained one after another by one process (the
    same training and recording code, no Dask), with its default BLAS threads and with
    one; the faster of the two is the reference. Target: parallel / sequential <= 0.65.
    All are timed from the process's launch to its exit: the interpreter, the imports, loading
    the data, and the sweep's study and cluster.
search: a `tpe` + `asha` sweep over learning rate, hidden units, batch size and weight
    decay, 5 epochs per trial, for `--minutes`; against the `fast` preset trained in the
    same run (5 epochs, seed 0). Targets: the best trial's test accuracy (chosen by
    validation accuracy) >= the fast preset's; pruning saves >= 40% of the epochs the
    sweep's trials would have trained without it.
The CPU is printed beside the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]

from nets.config import PRESETS  # noqa: E402
from nets.data import load_mnist  # noqa: E402
from nets.recorder import Recorder  # noqa: E402
from nets.store import RunStore  # noqa: E402
from nets.sweep_spec import Knob, SweepSpec  # noqa: E402
from nets.two_layer_net import TwoLayerNet  # noqa: E402


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()}, {os.cpu_count()} cores"
    except OSError:
        pass
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"


def sweep(spec: SweepSpec, runs_dir: Path) -> tuple[float, dict, list[float]]:
    """Seconds for `python -m nets.sweep` to run the spec, its final JSON object, and each
    trial's own seconds (training and recording, as its worker timed it)."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "nets.sweep", "--spec", json.dumps(spec.to_dict()), "--runs-dir", str(runs_dir),
         "--json"],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, check=True,
    )  # fmt: skip
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    return time.perf_counter() - started, lines[-1], [o["seconds"] for o in lines[:-1] if o.get("seconds")]


GRID = (Knob("hidden_size", choices=(64, 128, 256, 512)), Knob("learning_rate", choices=(1e-3, 3e-3)))
# Epochs per trial of the grid: the preset's own. Start-up is the same for any length, so shorter
# trials give a higher ratio (BENCH_SWEEP_EPOCHS=2 shows it).
EPOCHS = int(os.environ.get("BENCH_SWEEP_EPOCHS", PRESETS["fast"].epochs))
GRID_SPEC = SweepSpec(knobs=GRID, overrides=(("epochs", EPOCHS),), sampler="grid", pruner="none", trials=None,
                      workers=2)  # fmt: skip


def sequential_child(runs_dir: str) -> None:
    """The reference: the grid's 8 configs trained and recorded one after another in this
    process. Prints each trial's time."""
    data = load_mnist()
    store = RunStore(runs_dir)
    trials = []
    for h in (64, 128, 256, 512):
        for lr in (1e-3, 3e-3):
            config = GRID_SPEC.config_for({"hidden_size": h, "learning_rate": lr})
            run_id = store.create_run(config, source="cli")
            began = time.perf_counter()
            for _ in Recorder(store, run_id).train(TwoLayerNet.from_config(config), data, config):
                pass
            trials.append(time.perf_counter() - began)
    print(json.dumps({"trials": trials}))


def sequential(runs_dir: Path, blas_threads: str | None) -> tuple[float, list[float]]:
    """Seconds from the reference process's launch to its exit, as `sweep` times the sweep's
    (the child's own clock would leave out its interpreter and imports), and its trials'."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if blas_threads:
        env.update(OPENBLAS_NUM_THREADS=blas_threads, OMP_NUM_THREADS=blas_threads, MKL_NUM_THREADS=blas_threads)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, __file__, "--sequential-child", str(runs_dir)], env=env, cwd=ROOT,
                          capture_output=True, text=True, check=True)  # fmt: skip
    seconds = time.perf_counter() - started
    return seconds, json.loads(done.stdout.splitlines()[-1])["trials"]


def makespan(seconds: list[float], workers: int) -> float:
    """When the last of `workers` ends, given the trials longest first, each to the worker free first."""
    ends = [0.0] * workers
    for trial in sorted(seconds, reverse=True):
        ends[ends.index(min(ends))] += trial
    return max(ends)


def efficiency(rounds: int) -> None:
    """Rounds interleave the three ways, so a busy spell of the machine hits them alike."""
    times: dict[str, list[float]] = {"one process, default BLAS threads": [], "one process, 1 BLAS thread": [],
                                     "sweep, 2 Dask workers": []}  # fmt: skip
    # What the sweep's time would be with nothing but its trials (no start-up, no waits), longest
    # first on its workers: from the trials timed alone one after another on one BLAS thread,
    # and from the same trials as they ran inside the sweep, two at once.
    bounds: dict[str, list[float]] = {"alone": [], "in the sweep": []}
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(rounds):
            times["one process, default BLAS threads"].append(sequential(Path(tmp) / f"a{k}", None)[0])
            total, trials = sequential(Path(tmp) / f"b{k}", "1")
            times["one process, 1 BLAS thread"].append(total)
            bounds["alone"].append(makespan(trials, GRID_SPEC.workers))
            seconds, final, in_sweep = sweep(GRID_SPEC, Path(tmp) / f"c{k}")
            bounds["in the sweep"].append(makespan(in_sweep, GRID_SPEC.workers))
            assert final["finished"] == 8, final
            times["sweep, 2 Dask workers"].append(seconds)
    median = {name: statistics.median(values) for name, values in times.items()}
    print(f"8 trials of fast, {EPOCHS} epochs each, median of {rounds} interleaved rounds ({cpu_name()}):")
    for name, value in median.items():
        print(f"  {name:<36} {value:6.1f} s   ({', '.join(f'{v:.1f}' for v in times[name])})")
    reference = min(median["one process, default BLAS threads"], median["one process, 1 BLAS thread"])
    ratio = median["sweep, 2 Dask workers"] / reference
    print(f"  ratio sweep / the faster single process: {ratio:.2f}  (target <= 0.65)")
    # The same ratio within each round (the sweep against the faster of that round's two), so
    # a reader sees how far the host's speed moved the figure between rounds.
    rounds_ratios = [
        sweep_s / min(a, b)
        for sweep_s, a, b in zip(times["sweep, 2 Dask workers"], times["one process, default BLAS threads"],
                                 times["one process, 1 BLAS thread"], strict=True)
    ]  # fmt: skip
    print(f"  within each round: {', '.join(f'{r:.2f}' for r in rounds_ratios)}; "
          f"median {statistics.median(rounds_ratios):.2f}")  # fmt: skip
    print(f"  the trials alone, longest first on {GRID_SPEC.workers} workers (no start-up, no waits):")
    for name, values in bounds.items():
        bound = statistics.median(values)
        print(f"    timed {name:<13} {bound:5.1f} s, ratio {bound / reference:.2f}; "
              f"the sweep beyond them {median['sweep, 2 Dask workers'] - bound:.1f} s")  # fmt: skip


def search(minutes: float) -> None:
    knobs = (
        Knob("learning_rate", low=1e-4, high=0.1, log=True),
        Knob("hidden_size", choices=(64, 128, 256, 512, 800)),
        Knob("batch_size", choices=(32, 64, 100, 128, 256)),
        Knob("weight_decay", choices=(0.0, 1e-5, 1e-4, 1e-3)),
    )
    spec = SweepSpec(knobs=knobs, overrides=(("epochs", 5),), sampler="tpe", pruner="asha", trials=None,
                     timeout=minutes * 60, workers=2, seed=0)  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        data = load_mnist()
        fast = PRESETS["fast"]
        started = time.perf_counter()
        history = list(Recorder(None, None).train(TwoLayerNet.from_config(fast), data, fast))
        fast_seconds = time.perf_counter() - started
        seconds, final, _ = sweep(spec, Path(tmp) / "search")
    fast_acc = history[-1].test_acc
    print(f"TPE + ASHA for {minutes:g} min over lr, hidden, batch, weight decay, 5 epochs a trial ({cpu_name()}):")
    print(f"  fast preset (5 epochs): test {fast_acc:.2%} in {fast_seconds:.0f} s")
    print(
        f"  sweep: {final['trials']} trials in {seconds:.0f} s, {final['finished']} finished, {final['pruned']} pruned"
    )
    print(f"  best trial {final['best_trial']}: validation {final['best_val_acc']:.2%}, "
          f"test {final['best_test_acc']:.2%}, {final['best_params']}")  # fmt: skip
    print(f"  best test - fast test: {100 * (final['best_test_acc'] - fast_acc):+.2f} points  (target >= 0)")
    print(f"  epochs trained {final['epochs_trained']}, saved by pruning {final['epochs_saved']}: "
          f"{final['epochs_saved_share']:.0%} of the epochs  (target >= 40%)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=("efficiency", "search", "all"), default="all")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sequential-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sequential_child:
        return sequential_child(args.sequential_child)
    if args.part in ("efficiency", "all"):
        efficiency(args.rounds)
    if args.part in ("search", "all"):
        search(args.minutes)


if __name__ == "__main__":
    main()
