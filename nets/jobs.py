"""TrainingJob: one training run on a background thread, observed through snapshots.

The thread only runs the engine's loop and mutates the job under its lock; readers (the
dashboard's refresh, a test) take immutable snapshots. Weights are copied for readers on
request, between batches, so a training that nobody watches pays nothing for them. No
Streamlit here: the dashboard owns jobs, the engine does not know it.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

import numpy as np

from nets.config import TrainConfig
from nets.data import Mnist
from nets.training import BatchProgress, EpochMetrics, TrainControl, TrainingDiverged, check_fits, train
from nets.two_layer_net import TwoLayerNet

# Terminal states: the thread has ended.
FINISHED, STOPPED, DIVERGED, FAILED = "finished", "stopped", "diverged", "failed"
PENDING, RUNNING, PAUSED = "pending", "running", "paused"
DONE = (FINISHED, STOPPED, DIVERGED, FAILED)


@dataclass(frozen=True)
class JobSnapshot:
    """What a reader sees of a job at one instant."""

    status: str  # pending | running | paused | finished | stopped | diverged | failed
    history: tuple[EpochMetrics, ...]
    progress: BatchProgress | None  # the last finished batch
    message: str  # why it diverged or failed; empty otherwise
    seconds_left: float | None  # estimate for the rest of the run, None until measurable
    samples_per_sec: float | None  # recent training throughput

    @property
    def done(self) -> bool:
        return self.status in DONE

    @property
    def epochs_done(self) -> int:
        return len(self.history)


class TrainingJob:
    """Train `TwoLayerNet.from_config(config)` on `data` in a daemon thread."""

    def __init__(self, data: Mnist, config: TrainConfig):
        check_fits(config, data)  # refuse now, in the caller's thread, not later in the job's
        self.config = config
        self.data = data
        self.net = TwoLayerNet.from_config(config)
        self.control = TrainControl()
        self._lock = threading.Lock()
        self._history: list[EpochMetrics] = []
        self._progress: BatchProgress | None = None
        self._status = PENDING
        self._message = ""
        self._weights = self.net.copy_params()
        self._weights_version = 0
        self._weights_at = time.monotonic()
        self._want_weights = threading.Event()
        self._batch_seconds: float | None = None  # smoothed time per batch
        self._last_batch_at: float | None = None
        self._thread = threading.Thread(target=self._run, name="training-job", daemon=True)

    # --- control, from any thread ----------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def pause(self) -> None:
        self.control.pause()

    def resume(self) -> None:
        self._last_batch_at = None  # the pause is not a slow batch
        self.control.resume()

    def stop(self) -> None:
        self.control.stop()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the thread to end; True if it has."""
        if self._thread.is_alive():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    # --- observation --------------------------------------------------------------------------

    def snapshot(self) -> JobSnapshot:
        with self._lock:
            status = self._status
            if status == RUNNING and self.control.paused and not self.control.stopped:
                status = PAUSED
            return JobSnapshot(
                status=status,
                history=tuple(self._history),
                progress=self._progress,
                message=self._message,
                seconds_left=self._seconds_left(),
                samples_per_sec=(self.config.batch_size / self._batch_seconds) if self._batch_seconds else None,
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
        self._set(status=RUNNING)
        try:
            for metrics in train(self.net, self.data, self.config, control=self.control, on_batch=self._on_batch):
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

    def _on_batch(self, progress: BatchProgress) -> None:
        now = time.perf_counter()
        with self._lock:
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
