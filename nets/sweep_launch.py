"""Start a sweep as its own process, for the dashboard.

A sweep started from the dashboard belongs to the server, not to a tab: it runs as
`python -m nets.sweep` in a new session, so closing the tab (or restarting the server)
does not stop it, and every tab follows it through the store. Its output goes to a log
in the runs directory, whose last line explains a sweep that died before it began.

Its local workers train on the server's cores, so they come out of the same budget as
the dashboard's trainings (`slots`, the server's TrainingScheduler): a new sweep takes at
most the free slots (fewer workers than asked when fewer are free; refused when none is),
a resumed one needs all of its workers free, and the slots stay taken while its process
lives. A sweep on an outside Dask cluster (`scheduler`) trains elsewhere and takes none.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from nets.scheduler import Claim, TrainingScheduler
from nets.store import SweepRecord
from nets.sweep import new_sweep_id
from nets.sweep_spec import SweepSpec

ROOT = Path(__file__).resolve().parent.parent
_launched: dict[str, tuple[subprocess.Popen, float]] = {}  # this server's sweep processes and when, by sweep id
_lock = threading.Lock()


def log_path(runs_dir: Path, sweep_id: str) -> Path:
    return Path(runs_dir) / "sweeps" / f"{sweep_id}.log"


class SweepBusy(RuntimeError):
    """No training slot is free for a sweep's workers; the message says how many are taken."""


def workers_allowed(spec: SweepSpec, slots: TrainingScheduler | None, scheduler: str | None = None) -> int:
    """How many workers a sweep launched now would get: its own number, at most the free slots."""
    if slots is None or scheduler:
        return spec.workers
    return min(spec.workers, slots.free())


def launch(
    spec: SweepSpec,
    *,
    runs_dir: Path,
    owner: str | None = None,
    scheduler: str | None = None,
    slots: TrainingScheduler | None = None,
) -> str:
    """Start a new sweep's driver process; returns the sweep id it will record itself under.
    With `slots`, its local workers are at most the free training slots (SweepBusy when none is)."""
    claim = _take(slots, spec.workers, scheduler, partial=True)
    if claim is not None and claim.slots < spec.workers:
        spec = dataclasses.replace(spec, workers=claim.slots)
    sweep_id = new_sweep_id()
    command = ["--spec", json.dumps(spec.to_dict()), "--sweep-id", sweep_id]
    if owner:
        command += ["--owner", owner]
    return _start(sweep_id, command, runs_dir, scheduler, slots, claim)


def launch_resume(
    sweep_id: str,
    *,
    runs_dir: Path,
    scheduler: str | None = None,
    slots: TrainingScheduler | None = None,
    workers: int = 1,
) -> str:
    """Go on with an interrupted or stopped sweep, in a new driver process. With `slots`, its
    `workers` (the stored spec's) must all be free (SweepBusy otherwise)."""
    claim = _take(slots, workers, scheduler, partial=False)
    return _start(sweep_id, ["--resume", sweep_id], runs_dir, scheduler, slots, claim)


def _take(slots: TrainingScheduler | None, workers: int, scheduler: str | None, partial: bool) -> Claim | None:
    """The training slots for a sweep's local workers (None: it takes none). `partial`: fewer will do."""
    if slots is None or scheduler:
        return None
    claim = slots.hold(workers)
    if claim.slots == 0 or (claim.slots < workers and not partial):
        slots.release(claim)
        held, waiting = slots.counts()
        queue = f", {waiting} waiting" if waiting else ""
        raise SweepBusy(
            f"{'no' if claim.slots == 0 else 'not enough'} training slots are free for {workers} sweep workers "
            f"(this server trains {slots.slots} runs at once: {held} taken{queue}); start it when runs end"
        )
    return claim


def _start(
    sweep_id: str,
    arguments: list[str],
    runs_dir: Path,
    scheduler: str | None,
    slots: TrainingScheduler | None = None,
    claim: Claim | None = None,
) -> str:
    log = log_path(runs_dir, sweep_id)
    command = [sys.executable, "-m", "nets.sweep", *arguments, "--runs-dir", str(runs_dir), "--json"]
    if scheduler:
        command += ["--scheduler", scheduler]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    launched_at = time.time()
    try:
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "wb") as out:
            process = subprocess.Popen(command, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                       stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    except BaseException:
        if claim is not None:
            slots.release(claim)
        raise
    if claim is not None:
        slots.watch(claim, lambda: process.poll() is None)  # the slots go back when its process ends
    with _lock:
        _launched[sweep_id] = (process, launched_at)
    return sweep_id


def began(record: SweepRecord | None) -> bool:
    """Whether the process launched for this sweep has taken it: a new sweep is recorded; a
    resumed one (recorded long before) runs, or ended after the launch. A sweep this server did
    not launch counts as begun once it is recorded."""
    if record is None:
        return False
    with _lock:
        launched = _launched.get(record.sweep_id)
    if launched is None or record.created >= launched[1]:
        return True
    return record.live or (record.ended is not None and record.ended >= launched[1])


def launch_failure(runs_dir: Path, sweep_id: str) -> str | None:
    """Why a sweep this server launched ended before recording itself (its log's last line),
    or None while it starts or after it began."""
    with _lock:
        process = _launched.get(sweep_id, (None, 0.0))[0]
    if process is None or process.poll() is None:
        return None
    try:
        lines = log_path(runs_dir, sweep_id).read_text(errors="replace").strip().splitlines()
    except OSError:
        lines = []
    return lines[-1] if lines else f"the sweep's process ended with status {process.returncode}"
