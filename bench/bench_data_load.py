"""The first script run's data load from a folder of .gz files, without and with decompressed copies.

Run from the project root, under the benchmark lock:
    flock /tmp/browser.lock python bench/bench_data_load.py [--mnist-dir DIR] [--tries 5]

Each sample is a fresh Python process timing what the dashboard's first script run does
to load MNIST (`app_state._shared_data`, load_mnist): read and check the four files, then
the split into float32 (NumPy already imported). Medians over `--tries`, for:
  - before: MNIST_UNPACKED_DIR=off, every start inflates the .gz files (the old way);
  - first start: an empty copies folder, so the files are inflated and their copies written;
  - later starts: the copies are verified (SHA-256) and memory-mapped.
The copies were just written, so they are in the page cache, as they are for a dashboard
restarted on the same machine. The CPU is printed beside the figures.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROBE = (  # NumPy and nets imported first: a dashboard has them loaded before its first script run
    "import time, os; from pathlib import Path; from nets.data import read_directory, split; "
    "t = time.perf_counter(); a = read_directory(Path(os.environ['MNIST_DIR'])); r = time.perf_counter() - t; "
    "split(a); print(r, time.perf_counter() - t)"
)


def cpu() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return f"{line.split(':', 1)[1].strip()}, {os.cpu_count()} cores"
    return platform.processor() or "unknown CPU"


def load_seconds(mnist_dir: str, unpacked: str) -> tuple[float, float]:
    """(reading and checking the four files, that plus the split) in a fresh process, seconds."""
    env = {**os.environ, "MNIST_DIR": mnist_dir, "MNIST_UNPACKED_DIR": unpacked, "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    read, total = out.stdout.split()
    return float(read), float(total)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist-dir", default=os.environ.get("MNIST_DIR", "/work/shared/mnist"))
    parser.add_argument("--tries", type=int, default=5)
    args = parser.parse_args()
    if not any(Path(args.mnist_dir).glob("*.gz")):
        sys.exit(f"{args.mnist_dir} holds no .gz files: nothing to compare")
    before, first, later = [], [], []
    for _ in range(args.tries):
        before.append(load_seconds(args.mnist_dir, "off"))
        with tempfile.TemporaryDirectory() as copies:
            first.append(load_seconds(args.mnist_dir, copies))
            later.append(load_seconds(args.mnist_dir, copies))
            later.append(load_seconds(args.mnist_dir, copies))
    print(f"CPU: {cpu()}; MNIST_DIR={args.mnist_dir}; medians of {args.tries} fresh processes")
    print(f"  {'':38s} {'read files':>11s} {'+ split':>9s}")
    for label, samples in (
        ("before (inflate .gz every start)", before),
        ("first start (inflate + write copies)", first),
        ("later starts (verified copies)", later),
    ):
        read, total = (statistics.median(s[i] for s in samples) for i in (0, 1))
        print(f"  {label:38s} {read:9.3f} s {total:7.3f} s")


if __name__ == "__main__":
    main()
