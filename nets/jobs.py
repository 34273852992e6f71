"""TrainingJob: one training run on a background thread, observed through snapshots.

The thread only runs the engine's loop and mutates the job under its lock; readers (the
dashboard's refresh, a test) take immutable snapshots. Weights are copied for readers on
request, between batches, so a training that nobody watches pays nothing for them. No
Streamlit here: the dashboard owns jobs, the engine does not know it.
"""

from __future__ import annotations

import contextlib
import math
import sqlite3
import threading
import time
from collections import deque
from dataclasses import dataclass

import numpy as np

from nets.checkpoint import LoadedModel
from nets.config import TrainConfig
from nets.data import Mnist
from nets.health import EpochHealth
from nets.optimizers import make_optimizer
from nets.recorder import Recorder
from nets.scheduler import Claim, QueuePlace, TrainingScheduler, default_slots
from nets.smoothing import LossTrace
from nets.stopping import StopRules
from nets.store import RunStore, StoreError
from nets.training import BatchProgress, EpochMetrics, TrainControl, TrainingDiverged, check_fits
from nets.two_layer_net import TwoLayerNet

SPEED_WINDOW = 3.0  # seconds of recent batches behind the live samples/s

# Terminal states: the thread has ended.
FINISHED, STOPPED, DIVERGED, FAILED = "finished", "stopped", "diverged", "failed"
PENDING, QUEUED, RUNNING, PAUSED = "pending", "queued", "running", "paused"
DONE = (FINISHED, STOPPED, DIVERGED, FAILED)


@dataclass(frozen=True)
class JobSnapshot:
    """What a reader sees of a job at one instant."""

    status: str  # pending | queued | running | paused | finished | stopped | diverged | failed
    history: tuple[EpochMetrics, ...]
    progress: BatchProgress | None  # the last finished batch
    message: str  # why it diverged or failed; empty otherwise
    seconds_left: float | None  # estimate for the rest of the run, None until measurable (or paused)
    samples_per_sec: float | None  # recent training throughput (None while paused)
    recording_error: str  # why the store stopped recording this run; empty while it records
    health: tuple[EpochHealth, ...] = ()  # one per epoch trained by this job
    trace: tuple[tuple[float, float], ...] = ()  # (fractional epoch, loss): the stored trace, then this job's
    lr_changes: tuple[tuple[float, float], ...] = ()  # (fractional epoch, new base rate) made while it trained
    asked_rate: float | None = None  # the base rate asked for last (maybe not yet taken); None: the config's
    stopped_by: str = ""  # the stop rule that ended it (patience | time_budget | target_val_acc), if one did
    stop_message: str = ""
    stop_rules: StopRules | None = None

    @property
    def done(self) -> bool:
        return self.status in DONE

    @property
    def epochs_done(self) -> int:
        return len(self.history)


class TrainingJob:
    """Train `TwoLayerNet.from_config(config)` on `data` in a daemon thread, recorded
    through `recorder` when given.

    To continue a run: `net` with its weights after the epochs of `history`, and the
    optimiser's saved `optimizer_state`; the job trains on to `config.epochs`.

    With a `scheduler`, the job trains only while it holds one of the server's slots: it
    waits in the queue first (status `queued`; `enqueue()` joins it, in the caller's thread,
    so the queue keeps the order of the clicks), gives the slot back while paused and queues
    again when resumed. A stop while it waits takes it out of the queue.
    """

    def __init__(
        self,
        data: Mnist,
        config: TrainConfig,
        recorder: Recorder | None = None,
        *,
        net: TwoLayerNet | None = None,
        history: tuple[EpochMetrics, ...] = (),
        optimizer_state: dict | None = None,
        stop_rules: StopRules | None = None,
        trace: tuple[tuple[float, float], ...] = (),
        scheduler: TrainingScheduler | None = None,
        owner: str | None = None,
        expected_seconds: float | None = None,
    ):
        check_fits(config, data)  # refuse now, in the caller's thread, not later in the job's
        self.config = config
        self.data = data
        self.recorder = recorder or Recorder(None, None)
        self.net = net if net is not None else TwoLayerNet.from_config(config)
        self.optimizer = make_optimizer(config.optimizer, config.learning_rate, config.momentum, config.weight_decay)
        self.optimizer.load_state(optimizer_state or {})
        self.start_epoch = len(history)
        self.stop_rules = stop_rules
        self.scheduler = scheduler
        self.owner = owner
        self.expected_seconds = expected_seconds  # how long it should train, for the queue's estimates
        self._claim: Claim | None = None
        self.control = TrainControl() if scheduler is None else _SlotControl(self)
        self._health: list[EpochHealth] = []
        self._trace = LossTrace()
        self._trace.points = [p for p in trace if p[0] <= self.start_epoch]  # a continued run's stored trace
        self._lock = threading.Lock()
        self._history: list[EpochMetrics] = list(history)
        self._progress: BatchProgress | None = None
        self._status = PENDING
        self._message = ""
        self._weights = self.net.copy_params()
        self._weights_version = 0
        self._weights_at = time.monotonic()
        self._want_weights = threading.Event()
        self._batch_seconds: float | None = None  # smoothed wall time per batch (for the time left)
        self._trained = (0, 0.0)  # training rows and training seconds so far (for the speed)
        self._recent: deque[tuple[float, int, float]] = deque()  # (wall time, rows, seconds) of recent batches
        self._last_batch_at: float | None = None
        self._thread = threading.Thread(target=self._run, name="training-job", daemon=True)

    # --- control, from any thread ----------------------------------------------------------

    def enqueue(self) -> bool:
        """Join the scheduler's queue now (before `start`); True when a slot is free at once."""
        if self.scheduler is None:
            return True
        if self._claim is None:
            self._claim = self._ask()
        return self._claim.holding

    def start(self) -> None:
        self.enqueue()
        self._thread.start()

    def pause(self) -> None:
        self.control.pause()

    def resume(self) -> None:
        self._last_batch_at = None  # the pause is not a slow batch
        self.control.resume()

    def stop(self) -> None:
        self.control.stop()
        claim = self._claim
        if claim is not None and claim.waiting:
            self.scheduler.release(claim)  # out of the queue: its thread wakes and ends

    def set_learning_rate(self, rate: float) -> None:
        """Train on at base rate `rate` from the next batch (recorded in `lr_changes`)."""
        self.control.set_learning_rate(rate)

    def step(self) -> None:
        """Train to the end of this epoch (or the next, when paused between two), then pause."""
        self._last_batch_at = None
        self.control.step()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the thread to end; True if it has."""
        if self._thread.is_alive():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    @property
    def queued(self) -> bool:
        """Waiting for a slot (first, or again after a pause)."""
        claim = self._claim
        return claim is not None and claim.waiting and not self.control.stopped

    def place(self) -> QueuePlace | None:
        """Where it stands in the queue and when it should start; None when it does not wait."""
        claim = self._claim
        return self.scheduler.place(claim) if claim is not None and self.scheduler is not None else None

    # --- observation --------------------------------------------------------------------------

    def snapshot(self) -> JobSnapshot:
        with self._lock:
            status = self._status
            if status in (PENDING, RUNNING) and self.queued:
                status = QUEUED
            elif status == RUNNING and self.control.paused and not self.control.stopped:
                status = PAUSED
            moving = status == RUNNING
            return JobSnapshot(
                status=status,
                history=tuple(self._history),
                progress=self._progress,
                message=self._message,
                seconds_left=self._seconds_left() if moving else None,
                samples_per_sec=self._samples_per_sec() if moving else None,
                recording_error=self.recorder.error,
                health=tuple(self._health),
                trace=tuple(self._trace.points),
                lr_changes=tuple(self.control.lr_changes),
                asked_rate=self.control.asked_rate(),
                stopped_by=self.control.stopped_by,
                stop_message=self.control.stop_message,
                stop_rules=self.stop_rules,
            )

    def weights(self, max_age: float = 0.0) -> tuple[int, dict[str, np.ndarray]]:
        """The latest published copy of the weights (version, params).

        When that copy is older than `max_age` seconds, asks the training thread for a
        fresher one, made after its next batch: a reader polling every second with
        max_age=3 sees weights at most about 4 s old, and costs one copy per 3 s.
        Copies are also published after every epoch.
        """
        with self._lock:
            if time.monotonic() - self._weights_at >= max_age:
                self._want_weights.set()
            return self._weights_version, self._weights

    # --- the thread ---------------------------------------------------------------------------

    def _run(self) -> None:
        if not self._take_slot():  # stopped in the queue, or its browser left: it never trained
            why = "its browser left while it waited" if self._claim.why == "absent" else "stopped while it waited"
            self.control.stop()
            self._set(status=STOPPED, message=why)
            self.recorder.status("stopped", why)
            return
        self._set(status=RUNNING)
        try:
            for metrics in self.recorder.train(self.net, self.data, self.config, control=self.control,
                                               on_batch=self._on_batch, optimizer=self.optimizer,
                                               start_epoch=self.start_epoch, on_health=self._on_health,
                                               stop_rules=self.stop_rules):  # fmt: skip
                with self._lock:
                    self._history.append(metrics)
                self._publish_weights()
            self._set(status=STOPPED if self.control.stopped else FINISHED)
        except TrainingDiverged as exc:
            self._set(status=DIVERGED, message=str(exc))
        except Exception as exc:  # a thread must not die silently: the UI shows the message
            self._set(status=FAILED, message=f"{type(exc).__name__}: {exc}".splitlines()[0])
        finally:
            self._publish_weights()
            self._give_back_slot()

    # --- the slot -------------------------------------------------------------------------------

    def _ask(self) -> Claim:
        return self.scheduler.ask(self.owner, self.expected_seconds, remaining=self._remaining)

    def _take_slot(self) -> bool:
        """Hold a slot to train in, waiting in the queue as long as it takes; False when the
        wait ended without one (a stop, or the browser gone). Always True without a scheduler."""
        if self.scheduler is None:
            return True
        if self._claim is None or self._claim.state == "released":
            self._claim = self._ask()
        return self.scheduler.wait(self._claim)

    def _give_back_slot(self) -> None:
        if self._claim is not None and self.scheduler is not None:
            self.scheduler.release(self._claim, "ended")

    def _remaining(self) -> float | None:
        """Seconds until this job lets its slot go, for the queue's estimate (its own measure,
        else what it was expected to take)."""
        with self._lock:
            measured = self._seconds_left()
        return measured if measured is not None else self.expected_seconds

    def _on_health(self, health: EpochHealth) -> None:
        with self._lock:
            self._health.append(health)

    def _on_batch(self, progress: BatchProgress) -> None:
        now = time.perf_counter()
        with self._lock:
            self._trace.add(progress.epoch, progress.batch, progress.batches, progress.loss)
            previous = self._progress
            same_epoch = previous is not None and previous.epoch == progress.epoch
            rows, seconds = self._trained
            rows += progress.rows - (previous.rows if same_epoch else 0)
            seconds += progress.seconds - (previous.seconds if same_epoch else 0.0)
            self._trained = (rows, seconds)
            self._recent.append((now, rows, seconds))
            while len(self._recent) > 2 and now - self._recent[0][0] > SPEED_WINDOW:
                self._recent.popleft()
            self._progress = progress
            if self._last_batch_at is not None and progress.batch > 1:
                elapsed = now - self._last_batch_at
                previous = self._batch_seconds
                self._batch_seconds = elapsed if previous is None else 0.9 * previous + 0.1 * elapsed
            self._last_batch_at = now
        if self._want_weights.is_set():
            self._want_weights.clear()
            self._publish_weights()

    def _publish_weights(self) -> None:
        copy = self.net.copy_params()
        with self._lock:
            self._weights = copy
            self._weights_version += 1
            self._weights_at = time.monotonic()

    def _set(self, status: str, message: str = "") -> None:
        with self._lock:
            self._status = status
            self._message = message

    def _samples_per_sec(self) -> float | None:
        """Training rows per second of training time over the batches of the last few
        seconds, counted as each epoch's record counts it (batch time only, no evaluations
        or waits), so the live figure and the final one agree."""
        if len(self._recent) >= 2:
            (_, rows0, seconds0), (_, rows1, seconds1) = self._recent[0], self._recent[-1]
            if seconds1 > seconds0:
                return (rows1 - rows0) / (seconds1 - seconds0)
        return self._history[-1].samples_per_sec if self._history else None

    def _seconds_left(self) -> float | None:
        """Batches still to do times the smoothed batch time, plus the evaluations left."""
        if self._batch_seconds is None or self._progress is None:
            return None
        p = self._progress
        batches_left = (p.batches - p.batch) + (self.config.epochs - p.epoch - 1) * p.batches
        eval_seconds = self._history[-1].eval_seconds if self._history else 0.0
        epochs_left = self.config.epochs - len(self._history)
        seconds = batches_left * self._batch_seconds + epochs_left * eval_seconds
        return seconds if math.isfinite(seconds) else None


class _SlotControl(TrainControl):
    """The control of a scheduled job: while paused, the job's slot goes to the queue's head;
    on resume (or a step) it queues again, and a stop or its browser leaving ends the wait."""

    def __init__(self, job: TrainingJob):
        super().__init__()
        self._job = job

    def wait(self) -> bool:
        if self.paused and not self.stopped:
            self._job._give_back_slot()
            if super().wait():
                return True
            if not self._job._take_slot():
                self.stop()
                return True
        return super().wait()


class JobRegistry:
    """The trainings live in one server process, keyed by run id, shared by all its sessions.

    Jobs outlive the browser session that started them (a reload or a closed tab does not
    stop a run); each owner (a browser) has at most one live job, so a closed tab leaves
    at most one run going, which ends by itself. Every job records into `store`. They train
    in the `scheduler`'s slots (at most K at once, the rest queued in order); a browser gone
    for good loses its queued run (`present`/`absent` say when its sessions come and go).
    """

    def __init__(self, store: RunStore, scheduler: TrainingScheduler | None = None):
        self.store = store
        self.scheduler = scheduler or TrainingScheduler(default_slots())
        self._jobs: dict[int, TrainingJob] = {}
        self._owners: dict[int, str | None] = {}
        self._lock = threading.Lock()

    def start(
        self,
        data: Mnist,
        config: TrainConfig,
        owner: str | None,
        name: str = "",
        source: str = "dashboard",
        stop_rules: StopRules | None = None,
        expected_seconds: float | None = None,
    ) -> int:
        """Record a new run and start training it, or queue it when every slot is taken
        (recorded as `queued`); refused while `owner` has a live run. `expected_seconds`: how
        long it should train, for the estimates of the runs queued behind it."""
        with self._lock:
            self._refuse_second(owner)
            # ValueError when the config does not fit the data
            job = TrainingJob(data, config, stop_rules=stop_rules, scheduler=self.scheduler, owner=owner,
                              expected_seconds=expected_seconds)  # fmt: skip
            status = "pending" if job.enqueue() else "queued"
            try:
                run_id = self.store.create_run(config, source=source, name=name, owner=owner, status=status)
            except BaseException:
                job._give_back_slot()  # not recorded: its place in the queue, or its slot, goes back
                raise
            job.recorder = Recorder(self.store, run_id)
            self._add(run_id, job, owner)
            return run_id

    def resume(
        self, data: Mnist, run_id: int, more_epochs: int, owner: str | None, stop_rules: StopRules | None = None
    ) -> int:
        """Continue an ended run for `more_epochs` epochs from its newest weights and optimiser state."""
        with self._lock:
            self._refuse_second(owner)
            if run_id in self._jobs and self._jobs[run_id].alive:
                raise JobError(f"run {run_id} is training already")
            plan = continue_plan(self.store, run_id, more_epochs)
            job = TrainingJob(data, plan.config, Recorder(self.store, run_id), net=plan.loaded.net,
                              history=plan.history, optimizer_state=plan.loaded.optimizer_state,
                              stop_rules=stop_rules, trace=tuple(self.store.trace(run_id)),
                              scheduler=self.scheduler, owner=owner)  # fmt: skip
            self.store.continue_run(run_id, plan.config)
            if not job.enqueue():
                self.store.set_status(run_id, "queued")  # until its slot comes: the recorder says running then
            self._add(run_id, job, owner)
            return run_id

    def _refuse_second(self, owner: str | None) -> None:
        live = self.live_run(owner)
        if owner is not None and live is not None:
            raise JobError(f"run {live} is still training: stop it before starting another")

    def _add(self, run_id: int, job: TrainingJob, owner: str | None) -> None:
        for ended in [i for i, j in self._jobs.items() if not j.alive and not j.recorder.error]:
            del self._jobs[ended]  # the store holds all of it now
            self._owners.pop(ended, None)
        self._jobs[run_id] = job
        self._owners[run_id] = owner
        job.start()

    def job(self, run_id: int) -> TrainingJob | None:
        """The job of a run trained by this process (live, or ended and not yet let go)."""
        return self._jobs.get(run_id)

    def present(self, owner: str) -> None:
        """A session of browser `owner` began (its queued run keeps its place)."""
        self.scheduler.present(owner)

    def absent(self, owner: str) -> None:
        """A session of browser `owner` ended; when it was the last, its queued run leaves the
        queue after the scheduler's grace (a reload comes back within it)."""
        self.scheduler.absent(owner)

    def live_run(self, owner: str | None) -> int | None:
        """The run `owner` is training now, if any."""
        return next((i for i, j in list(self._jobs.items()) if j.alive and self._owners.get(i) == owner), None)

    def shutdown(self, wait: float = 5.0) -> None:
        """The server is stopping: stop every job and record the live ones as interrupted."""
        live = [(run_id, job) for run_id, job in list(self._jobs.items()) if job.alive]
        for _, job in live:
            job.stop()
        for run_id, job in live:
            job.join(wait)
            with contextlib.suppress(StoreError, OSError, sqlite3.Error):  # the server is going: say what we can
                self.store.set_status(run_id, "interrupted", "the dashboard server stopped while it trained")


class JobError(RuntimeError):
    """A training action refused by the rules (one live run per browser); says what to do."""


@dataclass(frozen=True)
class ContinuePlan:
    config: TrainConfig
    loaded: LoadedModel
    history: tuple[EpochMetrics, ...]


def continue_plan(store: RunStore, run_id: int, more_epochs: int) -> ContinuePlan:
    """What continuing a run means: its newest weights (with the optimiser's state), the
    history up to them, and the config planning `more_epochs` more epochs."""
    record = store.run(run_id)
    if record.live:
        raise JobError(f"run {run_id} is {record.status}: stop it first, or wait for it to end")
    if record.weights_epochs is None:
        raise JobError(f"run {run_id} has no weights to continue from")
    loaded = store.load(run_id)
    history = tuple(m for m in store.history(run_id) if m.epoch < record.weights_epochs)
    if len(history) != record.weights_epochs:
        raise JobError(f"run {run_id} has no history for its weights (an uploaded model?): nothing to continue")
    if loaded.config.optimizer != "sgd" and not loaded.optimizer_state:
        raise JobError(f"run {run_id}'s weights have no optimizer state: it cannot be continued exactly")
    config = loaded.config.replace(epochs=record.weights_epochs + more_epochs)
    return ContinuePlan(config=config, loaded=loaded, history=history)
