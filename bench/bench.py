"""Benchmark: the engine against the notebook's own loop, PyTorch and the matmul bound.

Run from the project root:  MNIST_DIR=/path/to/mnist python bench/bench.py [--rounds N] [--only seed,best]

Every speed figure is a ratio against a reference timed in the same run, interleaved
A B C D, D C B A over several rounds so that the machine's noise falls on all alike;
medians are printed, and the ratios are medians of the per-round ratios. PyTorch is used
when importable (it is never a dependency of the project). The first line names the CPU
and the kernel; every section prints the load average, since other work on the machine
moves every figure.
"""

from __future__ import annotations

import argparse
import gzip
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script from anywhere

from bench.reference import NotebookNet  # noqa: E402
from nets.augment import shifted_batch  # noqa: E402
from nets.config import PRESETS, TrainConfig  # noqa: E402
from nets.data import FILE_NAMES, find_files, load_mnist  # noqa: E402
from nets.evaluation import evaluate  # noqa: E402
from nets.preprocess import preprocess  # noqa: E402
from nets.training import train  # noqa: E402
from nets.two_layer_net import TwoLayerNet  # noqa: E402

try:
    import torch
except ImportError:  # the benchmark runs without it and says so
    torch = None


# Set on some machines to force an older OpenBLAS kernel (Haswell), for old OpenBLAS builds
# that crash on newer CPUs. numpy's own OpenBLAS runs its native kernel (AVX-512 here) fine,
# and the targets were set on it, so the benchmark drops both for its own process only.
BLAS_OVERRIDES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def rerun_without_blas_overrides() -> None:
    """Replace this process by the same command without BLAS_OVERRIDES in its environment."""
    dropped = " ".join(f"{name}={os.environ[name]}" for name in BLAS_OVERRIDES if name in os.environ)
    if not dropped:
        return
    env = {k: v for k, v in os.environ.items() if k not in BLAS_OVERRIDES}
    env["BENCH_DROPPED_BLAS_ENV"] = dropped
    os.execve(sys.executable, [sys.executable, *sys.argv], env)


def blas_kernel() -> str:
    """Which OpenBLAS kernel numpy runs (OPENBLAS_CORETYPE can force an older one)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', 'unset')}"
    infos = [i for i in threadpool_info() if i.get("internal_api") == "openblas"]
    return ", ".join(f"openblas {i.get('architecture')} x{i.get('num_threads')}" for i in infos) or "no openblas"


def cpu_model() -> str:
    """The CPU's model name as the kernel reports it (what `lscpu` prints as Model name)."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def load() -> str:
    """The machine's load averages (1, 5, 15 min): other work running beside a measurement."""
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


# --- the contestants: each returns a callable that trains one epoch and returns seconds -------


def engine_epochs(data, config: TrainConfig) -> Callable[[], float]:
    """The product's own training loop; `seconds` is its training time (no evaluation)."""
    net = TwoLayerNet.from_config(config)
    epochs = train(net, data, config.replace(epochs=1000, lr_schedule="constant"))
    return lambda: next(epochs).seconds


def reference_epochs(data, config: TrainConfig) -> Callable[[], float]:
    """The notebook's own loop (bench/reference.py): one forward and one backward pass per
    batch, float64, the training error recorded once per epoch after the batch loop."""
    net = NotebookNet(TwoLayerNet.from_config(config).params)

    def epoch():
        started = time.perf_counter()
        net.epoch(data.x_train, data.y_train, config.batch_size, config.learning_rate)
        return time.perf_counter() - started

    return epoch


def torch_epochs(data, config: TrainConfig) -> Callable[[], float]:
    """The same model and schedule in PyTorch on the CPU, 2 threads, float32."""
    torch.set_num_threads(os.cpu_count() or 2)
    torch.manual_seed(config.seed)
    params = TwoLayerNet.from_config(config).params
    model = torch.nn.Sequential(
        torch.nn.Linear(784, config.hidden_size), torch.nn.ReLU(), torch.nn.Linear(config.hidden_size, 10)
    )
    with torch.no_grad():  # start from the engine's initial weights
        model[0].weight.copy_(torch.from_numpy(params["W1"].T.copy()))
        model[0].bias.copy_(torch.from_numpy(params["b1"]))
        model[2].weight.copy_(torch.from_numpy(params["W2"].T.copy()))
        model[2].bias.copy_(torch.from_numpy(params["b2"]))
    if config.optimizer == "momentum":
        # torch's SGD momentum keeps v <- mu v + g and steps lr v: the same as the engine's for a fixed lr.
        optimizer = torch.optim.SGD(model.parameters(), lr=config.learning_rate, momentum=config.momentum)
    elif config.optimizer == "adam":
        optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    else:
        optimizer = torch.optim.SGD(model.parameters(), lr=config.learning_rate)
    x_np, y_np = np.array(data.x_train), np.array(data.y_train)  # writable: torch warns on read-only arrays
    x, y = torch.from_numpy(x_np), torch.from_numpy(y_np)
    generator = torch.Generator().manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    n, batch = len(x), config.batch_size

    def epoch():
        started = time.perf_counter()
        order = torch.randperm(n, generator=generator) if config.shuffle else None
        for start in range(0, n, batch):
            index = slice(start, start + batch) if order is None else order[start : start + batch]
            if config.augment_shift:  # the same recipe: shifted digits made as the engine makes them
                xs, ys = shifted_batch(x_np, y_np, index if order is None else index.numpy(), config.augment_shift, rng)
                xb, yb = torch.from_numpy(xs), torch.from_numpy(ys)
            else:
                xb, yb = x[index], y[index]
            optimizer.zero_grad(set_to_none=True)
            loss = torch.nn.functional.cross_entropy(model(xb), yb)
            loss.backward()
            optimizer.step()
        return time.perf_counter() - started

    return epoch


def matmul_epochs(data, config: TrainConfig) -> Callable[[], float]:
    """Only the five matrix products an epoch needs, same shapes, into preallocated outputs.

    Forward x W1 and h W2; backward h^T dS (dW2), dS W2^T (dh) and x^T dA (dW1). Nothing
    else: a lower bound for any implementation that multiplies with the same BLAS.
    """
    rng = np.random.default_rng(0)
    H, B = config.hidden_size, config.batch_size
    W1 = rng.standard_normal((784, H), dtype=np.float32)
    W2 = rng.standard_normal((H, 10), dtype=np.float32)
    h, s, dh = (np.empty((B, H), np.float32), np.empty((B, 10), np.float32), np.empty((B, H), np.float32))
    dW1, dW2 = np.empty((784, H), np.float32), np.empty((H, 10), np.float32)
    x = data.x_train

    def epoch():
        started = time.perf_counter()
        for start in range(0, len(x) - B + 1, B):
            xb = x[start : start + B]
            np.matmul(xb, W1, out=h)
            np.matmul(h, W2, out=s)
            np.matmul(h.T, s, out=dW2)
            np.matmul(s, W2.T, out=dh)
            np.matmul(xb.T, dh, out=dW1)
        return time.perf_counter() - started

    return epoch


def gflop_per_epoch(config: TrainConfig, n: int) -> float:
    H = config.hidden_size
    per_row = 2 * (784 * H * 2 + H * 10 * 3)  # multiply-adds of the five products, per row
    return per_row * n / 1e9


# --- measuring --------------------------------------------------------------------------------


def interleaved(contestants: dict[str, Callable[[], float]], rounds: int) -> dict[str, list[float]]:
    """Times of each contestant, run A B C, C B A, ... so drift and noise hit all of them."""
    names = list(contestants)
    for name in names:  # warm-up: first-touch page faults, BLAS thread start-up
        contestants[name]()
    times = {name: [] for name in names}
    for r in range(rounds):
        for name in names if r % 2 == 0 else reversed(names):
            times[name].append(contestants[name]())
    return times


def paired_ratio(times, a: str, b: str) -> float:
    return statistics.median(x / y for x, y in zip(times[a], times[b], strict=True))


def print_speed(title: str, times: dict[str, list[float]], base: str, targets: dict[str, float]) -> None:
    print(f"\n{title}")
    print(f"  {'':<22}{'median s/epoch':>15}{'ratio engine/x':>16}  target")
    for name, samples in times.items():
        ratio = paired_ratio(times, base, name) if name != base else 1.0
        target = targets.get(name)
        verdict = "" if target is None else f"<= {target:.2f} {'ok' if ratio <= target else 'MISSED'}"
        print(f"  {name:<22}{statistics.median(samples):>15.4f}{ratio:>16.3f}  {verdict}")


def seed_learning_parity(data) -> None:
    """The seed preset, 50 epochs from the same initial weights, compared epoch by epoch.

    The float64 baseline against the engine as shipped (float32) and the engine in
    float64: the float64 engine must make the same mistakes at every epoch (the same
    learning); float32 may differ by the odd digit (rounding, which also depends on the
    BLAS kernel's order of summation).
    """
    config = PRESETS["seed"]
    start = TwoLayerNet.from_config(config).copy_params()
    reference = NotebookNet(start)
    ref_errors = []
    for _ in range(config.epochs):
        reference.epoch(data.x_train, data.y_train, config.batch_size, config.learning_rate)
        ref_errors.append(round((1 - reference.accuracy(data.x_test, data.y_test)) * len(data.y_test)))
    print("\nLearning, seed preset, 50 epochs from the same initial weights: test errors")
    print(f"  {'':<22}{'epoch 1':>8}{'10':>6}{'25':>6}{'50':>6}  difference from the baseline")
    shown = (0, 9, 24, config.epochs - 1)

    def row(errors: list[int]) -> str:  # the shown epochs, under the header's columns
        return "".join(f"{errors[i]:>{8 if i == 0 else 6}}" for i in shown)

    print(f"  {'baseline (float64)':<22}{row(ref_errors)}")
    for dtype in ("float64", "float32"):
        net = TwoLayerNet.from_config(config.replace(dtype=dtype))
        net.set_params(start)
        errors = [m.test_errors for m in train(net, data, config.replace(dtype=dtype))]
        worst = max(abs(e - r) for e, r in zip(errors, ref_errors, strict=True))
        verdict = "the same at every epoch" if worst == 0 else f"at most {worst} digits at any epoch"
        print(f"  {'engine (' + dtype + ')':<22}{row(errors)}  {verdict}")


def best_preset_run(data) -> None:
    config = PRESETS["best"]
    net = TwoLayerNet.from_config(config)
    history = list(train(net, data, config))
    seconds = sum(m.seconds for m in history)
    acc = history[-1].test_acc
    recipe = f"{config.epochs} epochs, hidden {config.hidden_size}, {config.optimizer}, {config.lr_schedule}"
    print(f"\nBest preset ({recipe}; {load()})")
    print(f"  test accuracy {acc:.4f} (target >= 0.9870 {'ok' if acc >= 0.987 else 'MISSED'})")
    print(f"  training time {seconds:.1f} s (target <= 36 s {'ok' if seconds <= 36 else 'MISSED'})")


def load_times(mnist_dir: str | None, rounds: int) -> None:
    """Loading from a decompressed cache (raw IDX, memory-mapped), against the .gz files."""
    files = find_files(Path(mnist_dir)) if mnist_dir else {}
    if len(files) != len(FILE_NAMES):
        print("\nLoading: skipped (set MNIST_DIR to a directory with the four files)")
        return
    with tempfile.TemporaryDirectory() as cache:
        for name, path in files.items():
            opener = gzip.open if path.suffix == ".gz" else open
            with opener(path, "rb") as src, open(Path(cache) / name, "wb") as dst:
                shutil.copyfileobj(src, dst)
        saved = os.environ.pop("MNIST_DIR", None)  # load_mnist must read the cache, not MNIST_DIR
        try:
            times = interleaved(
                {
                    "cache": lambda: _timed(lambda: load_mnist(cache_dir=cache, download=False)),
                    "gz": lambda: _timed(lambda: load_mnist(mnist_dir)),
                },
                rounds,
            )
        finally:
            if saved is not None:
                os.environ["MNIST_DIR"] = saved
    cache_s, gz_s = statistics.median(times["cache"]), statistics.median(times["gz"])
    print("\nLoading MNIST (whole split, float32)")
    print(f"  from the decompressed cache: {cache_s:.3f} s (target <= 0.300 {'ok' if cache_s <= 0.3 else 'MISSED'})")
    print(f"  from the files in MNIST_DIR: {gz_s:.3f} s (ratio cache/dir {cache_s / gz_s:.2f})")


def _timed(f) -> float:
    started = time.perf_counter()
    f()
    return time.perf_counter() - started


def peak_memory_of_cli() -> None:
    """Peak resident memory of `python -m nets.train --preset seed` (2 epochs: the peak comes early).

    Read as VmHWM inside the child just before it exits: getrusage(RUSAGE_CHILDREN) would
    also count the pages a forked child briefly shares with this large benchmark process.
    """
    code = (
        "import runpy, sys\n"
        "sys.argv = ['nets.train', '--preset', 'seed', '--epochs', '2', '--no-record']\n"
        "try:\n    runpy.run_module('nets.train', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        "print(next(l for l in open('/proc/self/status') if l.startswith('VmHWM')), file=sys.stderr)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True, text=True)
    peak_mb = int(result.stderr.split("VmHWM:")[1].split()[0]) / 1024
    print("\nMemory")
    verdict = "ok" if peak_mb <= 400 else "MISSED"
    print(f"  peak RSS of the seed preset from the command line: {peak_mb:.0f} MB (target <= 400 {verdict})")


def first_product(x: np.ndarray, net: TwoLayerNet) -> Callable[[], float]:
    """x @ W1 alone, into a preallocated output: the bound of a forward pass over x."""
    W1 = net.params["W1"]
    out = np.empty((len(x), W1.shape[1]), dtype=W1.dtype)
    x = x.astype(W1.dtype, copy=False)
    return lambda: _timed(lambda: np.matmul(x, W1, out=out))


def evaluation_times(data, rounds: int) -> None:
    """Evaluating the 10,000 test digits, for every preset's net, against its first product."""
    print(f"\nEvaluation of the 10,000 test digits ({load()})")
    print(f"  {'preset':<8}{'median ms':>10}{'first product ms':>18}{'ratio':>8}  target")
    for name, config in PRESETS.items():
        net = TwoLayerNet.from_config(config)
        times = interleaved(
            {
                "evaluate": lambda n=net: _timed(lambda: evaluate(n, data.x_test, data.y_test)),
                "product": first_product(data.x_test, net),
            },
            rounds,
        )
        ratio = paired_ratio(times, "evaluate", "product")
        whole, bound = statistics.median(times["evaluate"]), statistics.median(times["product"])
        verdict = "ok" if ratio <= 1.15 else "MISSED"
        print(f"  {name:<8}{whole * 1e3:>10.1f}{bound * 1e3:>18.1f}{ratio:>8.3f}  <= 1.15 {verdict}")


def latency(data, rounds: int) -> None:
    rows = []
    for name in ("seed", "best"):
        net = TwoLayerNet.from_config(PRESETS[name])
        one = data.x_test[:1]
        single = statistics.median(_timed(lambda n=net, x=one: n.probabilities(x)) for _ in range(50 * rounds))
        rows.append((name, single))
    canvas = np.zeros((280, 280, 4), dtype=np.uint8)  # a drawn 7 as the canvas delivers it
    canvas[..., 3] = 255
    canvas[60:78, 70:210, :3] = 255
    for row in range(78, 250):
        col = 210 - (row - 78) * 90 // 172
        canvas[row, col - 9 : col + 9, :3] = 255
    seed_net = TwoLayerNet.from_config(PRESETS["seed"])
    drawing = statistics.median(
        _timed(lambda: seed_net.probabilities(preprocess(canvas).x[None, :])) for _ in range(50 * rounds)
    )
    print("\nLatency")
    verdict = "ok" if drawing <= 0.01 else "MISSED"
    print(f"  one drawing, 280x280 canvas: preprocess + forward {drawing * 1e3:.2f} ms (target <= 10 {verdict})")
    for name, single in rows:
        print(f"  {name:<5} forward of one digit {single * 1e3:.3f} ms")


SECTIONS = ("seed", "best", "best-run", "parity", "eval", "load", "memory", "latency")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rounds", type=int, default=15, help="interleaved rounds of the seed comparison (default 15; best: a third)"
    )
    parser.add_argument("--skip-parity", action="store_true", help="skip the 50-epoch learning comparison")
    parser.add_argument(
        "--only", metavar="SECTIONS", help=f"comma-separated sections to run, of {', '.join(SECTIONS)} (default all)"
    )
    parser.add_argument(
        "--keep-blas-env",
        action="store_true",
        help=f"measure under {' and '.join(BLAS_OVERRIDES)} as set (default: drop them for this run)",
    )
    args = parser.parse_args()
    sections = set(SECTIONS if args.only is None else args.only.split(","))
    if unknown := sections - set(SECTIONS):
        parser.error(f"unknown section {sorted(unknown)[0]!r}; sections are {', '.join(SECTIONS)}")
    if args.skip_parity:
        sections.discard("parity")
    if not args.keep_blas_env:
        rerun_without_blas_overrides()

    data = load_mnist(os.environ.get("MNIST_DIR"), download=False)
    torch_version = torch.__version__ if torch else "not installed"
    print(f"CPU {cpu_model()} x{os.cpu_count()}, kernel {platform.release()}; {load()}")
    print(f"MNIST from {data.source}; numpy {np.__version__} ({blas_kernel()}); torch {torch_version}")
    if os.environ.get("BENCH_DROPPED_BLAS_ENV"):
        print(f"(dropped {os.environ['BENCH_DROPPED_BLAS_ENV']} for this run; --keep-blas-env keeps them)")
    if "seed" in sections:
        seed = PRESETS["seed"]
        contestants = {
            "engine": engine_epochs(data, seed),
            "notebook loop (f64)": reference_epochs(data, seed),
            "matmul bound": matmul_epochs(data, seed),
        }
        if torch:
            contestants["pytorch (cpu)"] = torch_epochs(data, seed)
        times = interleaved(contestants, args.rounds)
        bound = statistics.median(times["matmul bound"])
        print_speed(
            f"Seed preset epoch (784-128-10, batch 1000, 55 batches; {gflop_per_epoch(seed, 55000):.1f} GFLOP of "
            f"products, {gflop_per_epoch(seed, 55000) / bound:.0f} GFLOP/s at the bound; {load()})",
            times,
            "engine",
            {"notebook loop (f64)": 0.26, "pytorch (cpu)": 0.7, "matmul bound": 1.12},
        )
    if "best" in sections:
        best = PRESETS["best"]
        best_contestants = {"engine": engine_epochs(data, best), "matmul bound": matmul_epochs(data, best)}
        if torch:
            best_contestants["pytorch (cpu)"] = torch_epochs(data, best)
        best_times = interleaved(best_contestants, max(2, args.rounds // 3))
        bound = statistics.median(best_times["matmul bound"])
        print_speed(
            f"Best preset epoch (784-{best.hidden_size}-10, batch {best.batch_size}, {best.optimizer}, shuffled, "
            f"shifted; {gflop_per_epoch(best, 55000) / bound:.0f} GFLOP/s at the bound; {load()})",
            best_times,
            "engine",
            {"pytorch (cpu)": 0.6, "matmul bound": 1.3},
        )
    if "best-run" in sections:
        best_preset_run(data)
    if "parity" in sections:
        seed_learning_parity(data)
    if "eval" in sections:
        evaluation_times(data, max(3, args.rounds // 3))
    if "load" in sections:
        load_times(os.environ.get("MNIST_DIR"), max(3, args.rounds // 3))
    if "memory" in sections:
        peak_memory_of_cli()
    if "latency" in sections:
        latency(data, max(3, args.rounds // 3))


if __name__ == "__main__":
    main()
