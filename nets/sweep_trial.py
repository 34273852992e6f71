"""One trial of a sweep, as a worker process runs it.

A worker (a Dask worker, local or on a cluster) asks the sweep's Optuna study for the
next settings, trains them as a run of the store through the one recording path
(`Recorder`), reports the validation accuracy to Optuna after every epoch and stops as
soon as the pruner says so, then tells the study how the trial ended. Everything a
worker needs travels in a small `TrialJob`; the data is loaded by the worker itself,
through the project's own loader, once per process.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import math
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import optuna
from optuna.trial import TrialState

from nets.data import Mnist, load_mnist
from nets.recorder import Recorder
from nets.store import RunStore
from nets.sweep_spec import SweepSpec
from nets.training import BatchProgress, TrainControl, TrainingDiverged, check_fits
from nets.two_layer_net import TwoLayerNet

STOP_POLL_SECONDS = 0.5  # how often a training trial looks whether its sweep was asked to stop
SQLITE_TIMEOUT_SECONDS = 60  # several workers write the study's SQLite file at once


@dataclass(frozen=True)
class TrialJob:
    """What a worker needs to run trials of one sweep (plain values: it crosses processes)."""

    sweep_id: str
    spec: dict  # SweepSpec.to_dict()
    storage: str  # the Optuna storage URL
    runs_dir: str
    data_dir: str | None  # None: the worker's own MNIST_DIR, cache or download
    owner: str | None = None
    store_tag: str = ""  # names the driver's store in a study that several machines share


@dataclass(frozen=True)
class TrialOutcome:
    """How one trial ended; `status` is the run's: finished | pruned | diverged | stopped | failed."""

    trial: int
    params: dict
    status: str
    val_acc: float | None  # after its last epoch
    test_acc: float | None  # reported, never used to choose
    epochs: int  # epochs trained
    planned_epochs: int
    seconds: float  # wall time of the trial, evaluation included
    run_id: int
    message: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def open_storage(url: str) -> optuna.storages.BaseStorage:
    """Optuna's RDB storage; SQLite files get a long lock timeout, as several workers share one."""
    kwargs = {"connect_args": {"timeout": SQLITE_TIMEOUT_SECONDS}} if url.startswith("sqlite") else {}
    return optuna.storages.RDBStorage(url, engine_kwargs=kwargs)


class _Grid(optuna.samplers.GridSampler):
    """Optuna's grid, without its end of the study: when every point has been started it calls
    `study.stop()`, which outside `Study.optimize` (a worker asks and tells itself) raises, and
    the trial that had just trained was lost. The sweep's own budget ends it instead."""

    def after_trial(self, study, trial, state, values) -> None:
        pass


def make_sampler(spec: SweepSpec, slot: int) -> optuna.samplers.BaseSampler:
    """The spec's sampler. Each trial slot seeds its own, so parallel workers do not all draw
    the same settings, and the same spec and seed draw the same sequence again. The grid is
    the exception: it gives trial k the k-th point of one shuffled order, which every worker
    must share."""
    seed = (spec.seed * 1_000_003 + slot) % 2**32  # NumPy takes seeds below 2**32
    if spec.sampler == "grid":
        return _Grid(spec.grid_space(), seed=spec.seed)
    if spec.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=min(10, max(2, (spec.planned_trials or 20) // 4)))


def make_pruner(spec: SweepSpec) -> optuna.pruners.BasePruner:
    """Pruners judge the validation accuracy reported after each epoch (step = epochs trained, from 1)."""
    if spec.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=max(2, spec.workers), n_warmup_steps=0)
    if spec.pruner == "asha":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=4)
    return optuna.pruners.NopPruner()


_worker_storages: dict[tuple[int, str], optuna.storages.BaseStorage] = {}


def worker_storage(url: str) -> optuna.storages.BaseStorage:
    """The study storage of this worker process, opened once: opening it (its engine, a check
    of its tables and version) took 0.14-0.18 s of every trial. Keyed by process as well, so
    a worker forked from the driver never uses the driver's connections."""
    key = (os.getpid(), url)
    if key not in _worker_storages:
        _worker_storages[key] = open_storage(url)
    return _worker_storages[key]


_data_lock = threading.Lock()


def worker_data(data_dir: str | None) -> Mnist:
    """MNIST for this process, loaded once (the project's loader: verified files). Callers on
    several threads wait for one load: the sweep's driver starts it on a thread of its own
    while it makes the study, then needs it before forking its workers."""
    with _data_lock:
        return _load_data(data_dir)


@functools.lru_cache(maxsize=2)
def _load_data(data_dir: str | None) -> Mnist:
    return load_mnist(data_dir)


COUNTED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.FAIL)


def counted_trials(study: optuna.Study) -> list:
    """The trials that use a place in the sweep's budget: done, running or failed; not those
    interrupted (a killed process, a stop; they are tried again) or over the budget."""
    return [t for t in study.get_trials(deepcopy=False, states=COUNTED) if not t.user_attrs.get("interrupted")]


def over_budget(trial: optuna.Trial, spec: SweepSpec) -> bool:
    """Whether the budget was spent by earlier trials. Drivers on several machines share a
    study and may start one task too many at once; the storage numbers trials in the order
    they were asked for, so the first ones within the budget win, everywhere alike."""
    if spec.planned_trials is None:
        return False
    earlier = [t for t in counted_trials(trial.study) if t.number < trial.number]
    return len(earlier) >= spec.planned_trials


class _TrialEnded(Exception):
    """A trial that gives Optuna no value (stopped or failed): it is told as FAIL."""


def run_trial(job: TrialJob, slot: int) -> dict | None:
    """Ask for settings, train them as a recorded run, tell Optuna the result.

    Returns TrialOutcome.to_dict(), or None when the sweep was asked to stop before the
    trial began. Exceptions of the training are recorded, never raised: one bad trial must
    not end the sweep. Pruned trials are told as pruned, stopped and failed ones as failed.
    """
    spec = SweepSpec.from_dict(job.spec)
    store = RunStore(job.runs_dir)
    if store.sweep_stop_requested(job.sweep_id):
        return None
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the driver prints one line per trial
    study = optuna.load_study(
        study_name=job.sweep_id, storage=worker_storage(job.storage),
        sampler=make_sampler(spec, slot), pruner=make_pruner(spec),
    )  # fmt: skip
    with asking(job.storage):
        trial = study.ask()
    outcomes: list[TrialOutcome] = []
    try:
        value = _objective(trial, job, spec, store, outcomes)
    except optuna.TrialPruned:
        study.tell(trial, state=TrialState.PRUNED)  # its value: the last one it reported
    except _TrialEnded:
        study.tell(trial, state=TrialState.FAIL)
    except BaseException:
        study.tell(trial, state=TrialState.FAIL)
        raise
    else:
        study.tell(trial, value)
    return outcomes[0].to_dict() if outcomes else None


@contextlib.contextmanager
def asking(storage: str) -> Iterator[None]:
    """One worker of this machine at a time asks a SQLite study for its next trial.

    Optuna hands a queued trial (a whole grid in its order, a trial retried after a resume)
    to the first worker that marks it running, but SQLite has no row locks: two workers that
    asked at the same moment both read it as waiting and both trained it (seen with two
    trials ending together). A lock file beside the database makes the asks take turns; a
    server database (a sweep shared between machines) locks its rows itself."""
    from sqlalchemy.engine import make_url

    url = make_url(storage)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        yield  # a server database, or a database in memory (one process)
        return
    lock = Path(url.database + ".ask-lock")
    descriptor = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # closing releases the lock


def _objective(trial: optuna.Trial, job: TrialJob, spec: SweepSpec, store: RunStore, outcomes: list) -> float:
    """Train the trial's settings as a run; its value is the last epoch's validation accuracy.

    A diverged trial counts with the accuracy it had (chance level when it never finished
    an epoch): the sampler must learn to avoid that region, which a failed trial would not
    teach it.
    """
    if over_budget(trial, spec):
        trial.set_user_attr("interrupted", True)  # not a trial of the sweep: uses no place
        raise _TrialEnded("the sweep's budget of trials was spent meanwhile")
    params = {knob.name: knob.suggest(trial) for knob in spec.knobs}
    config = spec.config_for(params)
    label = spec.name or job.sweep_id
    run_id = store.create_run(
        config, source="sweep", name=f"{label} · trial {trial.number}", owner=job.owner,
        sweep=job.sweep_id, trial=trial.number, status="running",
    )  # fmt: skip
    trial.set_user_attr("run_id", run_id)
    trial.set_user_attr("store", job.store_tag)  # which machine's store holds the run
    status, message, last = "finished", "", None
    recorder = Recorder(store, run_id)
    control = TrainControl()
    started = time.perf_counter()
    try:
        data = worker_data(job.data_dir)
        check_fits(config, data)
        started = time.perf_counter()  # the first trial of a worker loads the data: not the trial's time
        epochs = recorder.train(
            TwoLayerNet.from_config(config), data, config, control=control,
            on_batch=_stop_watcher(store, job.sweep_id, control),
        )  # fmt: skip
        for metrics in epochs:
            last = metrics
            trial.report(metrics.val_acc, metrics.epoch + 1)  # step = epochs trained: ASHA judges after 1, 4, 16
            if metrics.epoch + 1 < config.epochs and trial.should_prune():  # pruning after the last saves nothing
                epochs.close()  # the recorder records "stopped"; "pruned" replaces it below
                status = "pruned"
                message = (
                    f"pruned by {spec.pruner} after {metrics.epoch + 1} of {config.epochs} epochs: "
                    f"validation accuracy {metrics.val_acc:.2%}"
                )
                store.set_status(run_id, "pruned", message)
                break
        if status == "finished" and control.stopped:
            status, message = "stopped", "the sweep was stopped"
    except TrainingDiverged as exc:
        status, message = "diverged", str(exc)
    except Exception as exc:  # noqa: BLE001 - recorded as the trial's failure, one line
        status, message = "failed", f"{type(exc).__name__}: {exc}".splitlines()[0]
        store.set_status(run_id, "failed", message)  # also when it failed before training began
    seconds = time.perf_counter() - started
    outcomes.append(
        TrialOutcome(
            trial=trial.number,
            params=params,
            status=status,
            val_acc=last.val_acc if last else None,
            test_acc=last.test_acc if last else None,
            epochs=last.epoch + 1 if last else 0,
            planned_epochs=config.epochs,
            seconds=seconds,
            run_id=run_id,
            message=message,
        )  # fmt: skip
    )
    if status == "pruned":
        raise optuna.TrialPruned(message)
    if status == "finished" and last is not None and math.isfinite(last.val_acc):
        return last.val_acc
    if status == "diverged":
        return last.val_acc if last is not None else 0.1
    if status == "stopped":
        trial.set_user_attr("interrupted", True)  # its place in the budget is free again on resume
    raise _TrialEnded(message or status)


def _stop_watcher(store: RunStore, sweep_id: str, control: TrainControl):
    """An on_batch callback that stops the training soon after the sweep is asked to stop."""
    checked = [time.monotonic()]

    def watch(_: BatchProgress) -> None:
        now = time.monotonic()
        if now - checked[0] >= STOP_POLL_SECONDS:
            checked[0] = now
            if store.sweep_stop_requested(sweep_id):
                control.stop()

    return watch
