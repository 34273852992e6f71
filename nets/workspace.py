"""Workspace: one browser's view of the store and the server's live trainings.

Plain Python, so the dashboard and the tests share the rules:
- every run of the store is visible to everyone, as TensorBoard shows a logdir;
- only the browser that started a run may pause, stop, rename, tag or delete it (runs
  from the command line, an import or a sweep have no owner: anyone may);
- a browser trains at most one run at a time (the JobRegistry enforces it);
- the current model, the one the other pages use, is the one the user picked, else the
  latest run this browser finished that learned, else the shipped model.

Nothing here copies what the store or a live job holds: a RunView reads through to its
job while it trains and to the store otherwise. Models are identified by stable keys
(run id and weights version); words for people are written by the UI.
"""

from __future__ import annotations

import csv
import functools
import io
from dataclasses import dataclass, fields

import numpy as np

from nets.bundle import Bundle, import_bundle
from nets.checkpoint import LoadedModel
from nets.config import TrainConfig
from nets.data import Mnist
from nets.jobs import JobError, JobRegistry, JobSnapshot, TrainingJob
from nets.scheduler import QueuePlace
from nets.stopping import StopRules
from nets.store import RunRecord, RunStore
from nets.training import EpochMetrics
from nets.two_layer_net import TwoLayerNet

CHANCE_ACCURACY = 0.1  # ten digits
LEARNED_MIN_ACCURACY = 0.2  # a run whose best validation accuracy stays below this learned nothing

PRETRAINED = "pretrained"  # the model key of the shipped model
MODEL_CHOICES = 30  # other runs a model selector offers, newest first


class WorkspaceError(RuntimeError):
    """An action that the workspace's rules refuse; the message says what to do instead."""


def learned(best_val_acc: float | None) -> bool:
    """Did a run learn anything? Chance is 10%; a run that never reached 20% did not."""
    return best_val_acc is not None and best_val_acc >= LEARNED_MIN_ACCURACY


@dataclass(frozen=True)
class RunView:
    """A run as a page sees it: its store record and, while this server trains it, its job."""

    record: RunRecord
    job: TrainingJob | None
    store: RunStore

    @property
    def run_id(self) -> int:
        return self.record.run_id

    @property
    def name(self) -> str:
        return self.record.name

    @property
    def config(self) -> TrainConfig:
        return self.job.config if self.job is not None else self.record.config

    def snapshot(self) -> JobSnapshot | None:
        """The live job's state now (None when this server is not training the run)."""
        return self.job.snapshot() if self.job is not None else None

    @property
    def live(self) -> bool:
        return self.job is not None and self.job.alive

    @property
    def status(self) -> str:
        """The job's status while this server has its job (fresher than a listing read a
        moment ago), else the store's."""
        snap = self.snapshot()
        return snap.status if snap is not None else self.record.status

    def history(self) -> list[EpochMetrics]:
        snap = self.snapshot()
        if snap is not None and not snap.done:
            return list(snap.history)
        return self.store.history(self.run_id)

    @property
    def has_weights(self) -> bool:
        return self.record.weights_epochs is not None

    @property
    def learned(self) -> bool:
        return self.record.status == "uploaded" or learned(self.record.best_val_acc)


@dataclass(frozen=True)
class ModelView:
    """A model to predict with. `key` changes whenever the weights do, so results computed
    from a view can be cached under it: ("pretrained",), ("run", id, epochs) for a run's
    newest stored weights, ("live", id, version) for a snapshot of a run training now."""

    key: tuple
    run_id: int | None  # None for the shipped model
    name: str  # the run's name, or "pretrained"
    epochs: int | None  # epochs behind these weights (None: unknown)
    _params: dict | None = None  # live snapshot weights
    _config: TrainConfig | None = None
    _loaded: LoadedModel | None = None

    @property
    def choice(self) -> int | str:
        """What a selector stores: the run id, or PRETRAINED. Stable across epochs."""
        return self.run_id if self.run_id is not None else PRETRAINED

    @property
    def live(self) -> bool:
        return self.key[0] == "live"

    @property
    def config(self) -> TrainConfig:
        return self._config if self._config is not None else self._loaded.config

    def params(self) -> dict[str, np.ndarray]:
        """The weights themselves, read-only (for pictures; predict through `net()`)."""
        return self._params if self._params is not None else self._loaded.net.params

    def net(self) -> TwoLayerNet:
        """A fresh net with these weights (layers cache their inputs: never share one between users)."""
        net = TwoLayerNet.from_config(self.config)
        net.set_params(self.params())
        return net


@functools.lru_cache(maxsize=16)
def _stored_model(store: RunStore, run_id: int, epochs: int) -> LoadedModel:
    """A run's weights, read and checked once per process and version."""
    return store.load(run_id, epochs)


class Workspace:
    """What one browser (`owner`) sees and may do. Holds only its own choices (the pinned
    model); everything else is read from the store and the registry when asked."""

    def __init__(self, store: RunStore, registry: JobRegistry, owner: str, pretrained: LoadedModel | None = None):
        self.store = store
        self.registry = registry
        self.owner = owner
        self.pretrained = pretrained
        self.pinned: int | str | None = None  # a model choice the user made (run id or PRETRAINED)

    # --- runs -----------------------------------------------------------------------------------

    def runs(self, records: list[RunRecord] | None = None) -> list[RunView]:
        """Every run in the store, newest first (from `records` when the caller read them)."""
        records = self.store.runs() if records is None else records
        return [RunView(r, self.registry.job(r.run_id), self.store) for r in records]

    def run(self, run_id: int) -> RunView:
        try:
            record = self.store.run(run_id)
        except KeyError:
            raise WorkspaceError(f"there is no run {run_id}") from None
        return RunView(record, self.registry.job(run_id), self.store)

    def active(self) -> RunView | None:
        """The run this browser is training now, if any."""
        run_id = self.registry.live_run(self.owner)
        return self.run(run_id) if run_id is not None else None

    def may_control(self, record: RunRecord) -> bool:
        return record.owner is None or record.owner == self.owner

    def _controlled(self, run_id: int) -> RunView:
        view = self.run(run_id)
        if not self.may_control(view.record):
            raise WorkspaceError(f"{view.name} was started in another browser: only that browser may change it")
        return view

    # --- training -----------------------------------------------------------------------------

    def start(
        self,
        data: Mnist,
        config: TrainConfig,
        name: str = "",
        stop_rules: StopRules | None = None,
        expected_seconds: float | None = None,
    ) -> int:
        """Start a run, or queue it while the server's training slots are all taken."""
        try:
            return self.registry.start(data, config, self.owner, name=name, stop_rules=stop_rules,
                                       expected_seconds=expected_seconds)  # fmt: skip
        except JobError as exc:
            raise WorkspaceError(str(exc)) from None

    def continue_run(self, data: Mnist, run_id: int, more_epochs: int, stop_rules: StopRules | None = None) -> int:
        self._controlled(run_id)
        try:
            return self.registry.resume(data, run_id, more_epochs, self.owner, stop_rules=stop_rules)
        except JobError as exc:
            raise WorkspaceError(str(exc)) from None

    def _live_job(self) -> TrainingJob | None:
        run_id = self.registry.live_run(self.owner)
        return self.registry.job(run_id) if run_id is not None else None

    def queue_place(self) -> QueuePlace | None:
        """Where this browser's run waits for a slot, and when it should start (None: not queued)."""
        job = self._live_job()
        return job.place() if job is not None else None

    def pause(self) -> None:
        if job := self._live_job():
            job.pause()

    def resume(self) -> None:
        if job := self._live_job():
            job.resume()

    def step(self) -> None:
        """Train this browser's live run to the end of its epoch, then pause it."""
        if job := self._live_job():
            job.step()

    def set_learning_rate(self, rate: float) -> None:
        """Change the learning rate of this browser's live run from its next batch."""
        if job := self._live_job():
            job.set_learning_rate(rate)

    def stop(self, wait: float = 5.0) -> None:
        """Stop this browser's live run (it keeps its weights and history)."""
        if job := self._live_job():
            job.stop()
            job.join(wait)

    # --- editing ---------------------------------------------------------------------------------

    def rename(self, run_id: int, name: str) -> None:
        self._controlled(run_id)
        self.store.rename(run_id, name)

    def set_notes(self, run_id: int, notes: str) -> None:
        self._controlled(run_id)
        self.store.set_notes(run_id, notes)

    def set_tags(self, run_id: int, tags: list[str]) -> None:
        self._controlled(run_id)
        self.store.set_tags(run_id, tags)

    def delete(self, run_id: int) -> None:
        view = self._controlled(run_id)
        if view.live or view.record.live:
            raise WorkspaceError(f"{view.name} is training: stop it before deleting it")
        self.store.delete(run_id)
        if self.pinned == run_id:
            self.pinned = None

    def add_model(self, loaded: LoadedModel, name: str) -> int:
        """Keep an uploaded model as a run of this browser's and make it the current model."""
        run_id = self.store.add_model(loaded, name=name, source="upload", owner=self.owner)
        self.pinned = run_id
        return run_id

    def add_bundle(self, bundle: Bundle) -> int:
        """Keep an uploaded file: a plain model file as this browser's upload, a run bundle as
        an imported run with its curves; either becomes the current model when it learned."""
        if not bundle.history:
            return self.add_model(bundle.loaded, bundle.name)
        run_id = import_bundle(self.store, bundle)
        if self.run(run_id).learned:
            self.pinned = run_id
        return run_id

    # --- models ---------------------------------------------------------------------------------

    def pin(self, choice: int | str | None) -> None:
        """Make a run (or the shipped model) the current model; None goes back to the automatic rule."""
        if choice is not None and choice != PRETRAINED:
            view = self.run(int(choice))
            if not view.has_weights:
                raise WorkspaceError(f"{view.name} has no trained weights yet ({view.status})")
            if not view.learned:
                raise WorkspaceError(f"{view.name} did not learn (best validation accuracy at chance level)")
        self.pinned = choice

    def current_choice(self, records: list[RunRecord] | None = None) -> int | str:
        """The current model's choice: pinned, else this browser's latest finished run that
        learned, else the shipped model. `records`: the store's listing, when already read.

        A sweep's trials are chosen only by hand ("Make it the current model"): the latest of
        a sweep's many trials is no better than any other, and a sweep finishing in the
        background must not change the model under the Draw page."""
        if self.pinned is not None:
            if self.pinned == PRETRAINED:
                return PRETRAINED
            try:
                if self.run(int(self.pinned)).has_weights:
                    return self.pinned
            except WorkspaceError:
                pass  # deleted meanwhile
        for record in self.store.runs() if records is None else records:
            mine = record.owner == self.owner and record.source != "sweep"
            if mine and record.status == "finished" and learned(record.best_val_acc):
                return record.run_id
        return PRETRAINED

    def model(self, choice: int | str) -> ModelView | None:
        """The model for a choice, at its newest weights: a live run's latest snapshot, a
        stored run's newest weights, or the shipped model. None when it has no weights."""
        if choice == PRETRAINED:
            if self.pretrained is None:
                return None
            epochs = self.pretrained.meta.get("epochs_trained")
            return ModelView((PRETRAINED,), None, "shipped model", epochs, _loaded=self.pretrained)
        try:
            view = self.run(int(choice))
        except (WorkspaceError, ValueError):
            return None
        if view.live:
            version, params = view.job.weights(max_age=1.0)
            epochs = len(view.job.snapshot().history)
            return ModelView(("live", view.run_id, version), view.run_id, view.name, epochs, params, view.config)
        epochs = view.record.weights_epochs
        if epochs is None:
            return None
        loaded = _stored_model(self.store, view.run_id, epochs)
        return ModelView(("run", view.run_id, epochs), view.run_id, view.name, epochs, _loaded=loaded)

    def current_model(self) -> ModelView | None:
        return self.model(self.current_choice())

    def model_choices(self, records: list[RunRecord] | None = None, most: int = MODEL_CHOICES) -> list[int | str]:
        """What a model selector offers: this browser's live run (to watch it learn), the
        current model, the `most` newest other runs with weights that learned, and the
        shipped model (the Compare page reaches every run). `records`: the store's listing,
        when the caller has read it already."""
        records = self.store.runs() if records is None else records
        active = self.registry.live_run(self.owner)
        current = self.current_choice(records)
        choices: list[int | str] = [] if active is None else [active]
        if current not in choices:
            choices.append(current)
        others = 0
        for record in records:
            usable = record.weights_epochs is not None and (record.status == "uploaded" or learned(record.best_val_acc))
            if usable and not record.live and record.run_id not in choices and others < most:
                choices.append(record.run_id)
                others += 1
        if PRETRAINED not in choices and self.pretrained is not None:
            choices.append(PRETRAINED)
        return choices


METRIC_FIELDS = [f.name for f in fields(EpochMetrics)]


def history_csv(history: list[EpochMetrics]) -> str:
    """A run's metrics as CSV, one row per epoch; epochs count from 1, as the charts do."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=METRIC_FIELDS)
    writer.writeheader()
    for metrics in history:
        writer.writerow({**metrics.to_dict(), "epoch": metrics.epoch + 1})
    return out.getvalue()
