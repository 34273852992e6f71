"""Workspace: what one user owns: their runs, the current model, at most one live training.

Plain Python, so the dashboard, tests and any other front end share the same rules: a
second training cannot start while one is live (never two threads on one user's model),
every run is kept with its settings and history, and the current model, the one the
other pages use, is a finished (or stopped, or diverged) run or an uploaded model.
"""

from __future__ import annotations

import csv
import io
import threading
import time
from dataclasses import dataclass, field, fields

from nets.checkpoint import LoadedModel
from nets.config import TrainConfig
from nets.data import Mnist
from nets.jobs import DIVERGED, FINISHED, PENDING, STOPPED, JobSnapshot, TrainingJob
from nets.training import EpochMetrics
from nets.two_layer_net import TwoLayerNet

UPLOADED = "uploaded"


class WorkspaceError(RuntimeError):
    """An action that the workspace's rules refuse; the message says what to do instead."""


@dataclass
class Run:
    """One training run (or an uploaded model), kept for the session."""

    run_id: int
    config: TrainConfig
    name: str
    status: str = PENDING
    history: list[EpochMetrics] = field(default_factory=list)
    message: str = ""
    net: TwoLayerNet | None = None  # the weights once the run has ended (None while it trains)
    job: TrainingJob | None = None  # while it trains
    created: float = field(default_factory=time.time)
    snapshot: JobSnapshot | None = None  # the latest view of a live job

    @property
    def live(self) -> bool:
        return self.job is not None

    @property
    def usable(self) -> bool:
        """Has weights worth predicting with: ended, and trained at least an epoch (or uploaded)."""
        return self.net is not None and (self.status == UPLOADED or bool(self.history))

    @property
    def best_val_acc(self) -> float | None:
        return max((m.val_acc for m in self.history), default=None)

    @property
    def test_acc(self) -> float | None:
        return self.history[-1].test_acc if self.history else None

    @property
    def train_seconds(self) -> float:
        return sum(m.seconds for m in self.history)

    @property
    def samples_per_sec(self) -> float | None:
        """Training rows per second over the whole run (None before the first epoch)."""
        rows = sum(m.samples_per_sec * m.seconds for m in self.history)
        return rows / self.train_seconds if self.train_seconds > 0 else None

    def summary(self) -> dict:
        """One row of the run table."""
        c = self.config
        return {
            "run": self.run_id,
            "status": self.status,
            "epochs": f"{len(self.history)}/{c.epochs}",
            "hidden": c.hidden_size,
            "activation": c.activation,
            "init": c.init,
            "optimizer": c.optimizer,
            "lr": c.learning_rate,
            "schedule": c.lr_schedule,
            "batch": c.batch_size,
            "decay": c.weight_decay,
            "shift": c.augment_shift,
            "seed": c.seed,
            "best val acc": self.best_val_acc,
            "test acc": self.test_acc,
            "train s": round(self.train_seconds, 1),
        }


@dataclass(frozen=True)
class ModelView:
    """A model to inspect: a run's final weights, or a snapshot of a run still training.

    `key` changes whenever the weights do, so results computed from a view can be cached
    under it and never go stale.
    """

    key: tuple
    label: str
    run: Run | None  # None for a model that is not one of the user's runs (the shipped one)
    params: dict | None = None  # a live run's snapshot; None means run.net
    model: TwoLayerNet | None = None  # a model of its own, when run is None

    @property
    def live(self) -> bool:
        return self.run is not None and self.params is not None

    @property
    def name(self) -> str:
        return self.run.name if self.run is not None else self.label

    def net(self) -> TwoLayerNet:
        if self.model is not None:
            return self.model
        if self.params is None:
            return self.run.net
        net = TwoLayerNet.from_config(self.run.config)
        net.set_params(self.params)  # copies: the training thread's arrays stay its own
        return net


class Workspace:
    """A user's runs. Not shared between users; safe to call from one thread at a time,
    while the jobs it owns train on their own threads."""

    def __init__(self):
        self.runs: dict[int, Run] = {}
        self.current_id: int | None = None
        self._next_id = 1
        self._lock = threading.Lock()

    # --- training -------------------------------------------------------------------------

    def active(self) -> Run | None:
        """The run whose thread is still alive, if any."""
        return next((run for run in self.runs.values() if run.live), None)

    def start(self, data: Mnist, config: TrainConfig, name: str = "") -> Run:
        """Start training a new run. Refused while another run of this workspace trains."""
        with self._lock:
            self.refresh()
            active = self.active()
            if active is not None:
                raise WorkspaceError(f"run {active.run_id} is still training: stop it before starting another")
            job = TrainingJob(data, config)  # raises ValueError when the config does not fit
            run = Run(run_id=self._next_id, config=config, name=name or f"run {self._next_id}", job=job)
            self._next_id += 1
            self.runs[run.run_id] = run
            job.start()
            return run

    def pause(self) -> None:
        if run := self.active():
            run.job.pause()

    def resume(self) -> None:
        if run := self.active():
            run.job.resume()

    def stop(self, wait: float = 5.0) -> None:
        """Stop the live run (it keeps its weights and history) and wait for its thread."""
        if run := self.active():
            run.job.stop()
            run.job.join(wait)
            self.refresh()

    def refresh(self) -> None:
        """Bring every run up to date with its job; hand over the weights of ended ones.

        A run that ends well (finished, or stopped or diverged after at least one epoch)
        becomes the current model, so the other pages use the latest result.
        """
        for run in self.runs.values():
            if run.job is None:
                continue
            snapshot = run.job.snapshot()
            run.snapshot = snapshot
            run.status = snapshot.status
            run.history = list(snapshot.history)
            run.message = snapshot.message
            if snapshot.done and not run.job.alive:
                run.net = run.job.net
                run.job = None
                if run.usable and run.status in (FINISHED, STOPPED, DIVERGED):
                    self.current_id = run.run_id

    def shutdown(self, wait: float = 5.0) -> None:
        """Stop every job (the session is ending): no thread outlives its user."""
        for run in self.runs.values():
            if run.job is not None:
                run.job.stop()
        for run in self.runs.values():
            if run.job is not None:
                run.job.join(wait)

    # --- models -----------------------------------------------------------------------------

    def add_model(self, loaded: LoadedModel, name: str) -> Run:
        """Keep an uploaded model as a run of its own and make it the current model."""
        run = Run(run_id=self._next_id, config=loaded.config, name=name, status=UPLOADED, net=loaded.net, message="")
        self._next_id += 1
        self.runs[run.run_id] = run
        self.current_id = run.run_id
        return run

    def set_current(self, run_id: int) -> None:
        run = self.runs.get(run_id)
        if run is None:
            raise WorkspaceError(f"there is no run {run_id}")
        if not run.usable:
            raise WorkspaceError(f"run {run_id} has no trained weights yet ({run.status})")
        self.current_id = run_id

    def current(self) -> Run | None:
        return self.runs.get(self.current_id) if self.current_id is not None else None

    def finished_runs(self) -> list[Run]:
        return [run for run in self.runs.values() if run.usable]

    def inspectable(self) -> list[ModelView]:
        """Models worth inspecting: the current one first, then the run training now (as a
        snapshot of its latest weights), then every other run with weights."""
        views = []
        current = self.current()
        if current is not None:
            views.append(ModelView(("run", current.run_id), f"{current.name} (current model)", current))
        active = self.active()
        if active is not None:
            version, params = active.job.weights()
            epochs = len(active.history)
            label = f"{active.name} (training now: snapshot after {epochs} of {active.config.epochs} epochs)"
            views.append(ModelView(("live", active.run_id, version), label, active, params))
        for run in self.finished_runs():
            if current is None or run.run_id != current.run_id:
                views.append(ModelView(("run", run.run_id), f"{run.name} ({run.status})", run))
        return views


METRIC_FIELDS = [f.name for f in fields(EpochMetrics)]


def history_csv(history: list[EpochMetrics]) -> str:
    """A run's metrics as CSV, one row per epoch, the columns of EpochMetrics."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=METRIC_FIELDS)
    writer.writeheader()
    for metrics in history:
        writer.writerow(metrics.to_dict())
    return out.getvalue()
