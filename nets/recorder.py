"""Recorder: one path from the training loop into the store, for every front end.

`Recorder.train(...)` runs `training.train` and, before asking for the next epoch,
commits the finished one (weights, metrics, a light loss trace) to the RunStore; at the
end it records how the run ended. The dashboard's jobs, the command line and sweep trials
all train through it, so a run is recorded the same way wherever it started.

Recording must never cost the training: when the store cannot be written (a full disk, a
read-only directory, a damaged file), the run trains on, the failure is kept in `error`
as one line, and nothing more is written for it.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterator, Sequence

from nets.config import TrainConfig
from nets.data import Mnist
from nets.health import EpochHealth
from nets.optimizers import Optimizer, make_optimizer
from nets.smoothing import TRACE_POINTS_PER_EPOCH, LossTrace
from nets.stopping import StopRules
from nets.store import END_STATUSES, RunStore, StoreError
from nets.training import BatchProgress, EpochMetrics, TrainControl, TrainingDiverged, train
from nets.two_layer_net import TwoLayerNet

RECORDING_ERRORS = (StoreError, OSError, sqlite3.Error)


class Recorder:
    """Records one run of the store as it trains."""

    def __init__(self, store: RunStore | None, run_id: int | None):
        self.store = store if run_id is not None else None
        self.run_id = run_id
        self.error = ""  # why recording stopped; empty while it works (or when not recording)
        self._trace = LossTrace(TRACE_POINTS_PER_EPOCH)
        self._health: EpochHealth | None = None  # the latest epoch's, until that epoch is recorded

    @property
    def recording(self) -> bool:
        return self.store is not None and not self.error

    def _guard(self, action: Callable[[], None]) -> None:
        if not self.recording:
            return
        try:
            action()
        except RECORDING_ERRORS as exc:
            self.error = f"recording of run {self.run_id} stopped: {exc}"

    def on_batch(self, progress: BatchProgress) -> None:
        """Average the batch losses into at most TRACE_POINTS_PER_EPOCH points per epoch."""
        self._trace.add(progress.epoch, progress.batch, progress.batches, progress.loss)

    def epoch(
        self,
        metrics: EpochMetrics,
        net: TwoLayerNet,
        config: TrainConfig,
        optimizer: Optimizer,
        lr_changes: Sequence[tuple[float, float]] = (),
    ) -> None:
        """Commit the epoch, with the learning-rate changes of `lr_changes` made during it."""
        trace = self._trace.take()
        health = self._health.to_dict() if self._health is not None and self._health.epoch == metrics.epoch else None
        changes = [(step, rate) for step, rate in lr_changes if metrics.epoch <= step < metrics.epoch + 1]
        self._guard(
            lambda: self.store.record_epoch(
                self.run_id, metrics, net, config, optimizer.state(), trace, health, changes
            )  # fmt: skip
        )

    def status(self, status: str, message: str = "") -> None:
        """Record the run's status. After a recording failure, the ending is still tried
        once, as `interrupted` with the failure as its message: the store holds the run up
        to its last committed epoch, and the run must not read as still training there."""
        if self.store is not None and self.error and status in END_STATUSES:
            with contextlib.suppress(*RECORDING_ERRORS):
                self.store.set_status(self.run_id, "interrupted", self.error)
            return
        self._guard(lambda: self.store.set_status(self.run_id, status, message))

    def train(
        self,
        net: TwoLayerNet,
        data: Mnist,
        config: TrainConfig,
        *,
        control: TrainControl | None = None,
        on_batch: Callable[[BatchProgress], None] | None = None,
        optimizer: Optimizer | None = None,
        start_epoch: int = 0,
        on_health: Callable[[EpochHealth], None] | None = None,
        stop_rules: StopRules | None = None,
    ) -> Iterator[EpochMetrics]:
        """`training.train`, each epoch committed before the next starts, the ending recorded.

        Ends as finished, stopped (by `control` or a stop rule, whose message is kept),
        diverged (re-raised), interrupted (Ctrl-C, re-raised) or failed (re-raised).
        """
        control = control or TrainControl()
        optimizer = optimizer or make_optimizer(config.optimizer, config.learning_rate, config.momentum,
                                                config.weight_decay)  # fmt: skip

        def batch(progress: BatchProgress) -> None:
            self.on_batch(progress)
            if on_batch:
                on_batch(progress)

        def health(found: EpochHealth) -> None:
            self._health = found  # recorded with its epoch, so a stored run shows it too
            on_health(found)

        self.status("running")
        try:
            for metrics in train(net, data, config, control=control, on_batch=batch, optimizer=optimizer,
                                 start_epoch=start_epoch, on_health=health if on_health else None,
                                 stop_rules=stop_rules):  # fmt: skip
                self.epoch(metrics, net, config, optimizer, control.lr_changes)
                yield metrics
        except TrainingDiverged as exc:
            self.status("diverged", str(exc))
            raise
        except KeyboardInterrupt:
            self.status("interrupted", "stopped by Ctrl-C")
            raise
        except GeneratorExit:
            self.status("stopped")
            raise
        except BaseException as exc:
            self.status("failed", f"{type(exc).__name__}: {exc}".splitlines()[0])
            raise
        if control.kept_epoch is not None:  # early stopping put the best epoch's weights back into the net
            kept = control.kept_epoch + 1
            self._guard(lambda: self.store.keep_best(self.run_id, kept, net, config, optimizer.state()))
        self.status("stopped" if control.stopped else "finished", control.stop_message)
