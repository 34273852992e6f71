"""The training loop: a generator of one EpochMetrics per epoch, pausable and stoppable.

The dashboard, the command line and the tests all consume the same records. An epoch is
one pass over the training rows, in a fresh permutation when `config.shuffle`, else in
order (the notebook's sequential batches). Train loss and accuracy are the means over the
epoch's batches, measured on each batch just before its update (no extra pass).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass

import numpy as np

from nets.augment import shifted_batch
from nets.config import TrainConfig
from nets.data import Mnist
from nets.elastic import Distortion, distort
from nets.evaluation import evaluate
from nets.health import EpochHealth, HealthProbe, evaluate_watching_units, initial_weights
from nets.optimizers import Optimizer, make_optimizer
from nets.stopping import PATIENCE, TIME_BUDGET, StopDecision, StopRules, StopWatch
from nets.two_layer_net import TwoLayerNet


@dataclass(frozen=True)
class EpochMetrics:
    """What one finished epoch measured. Epochs count from 0, as the notebook printed them."""

    epoch: int  # 0-based index of the epoch just finished
    epochs: int  # how many the run plans
    train_loss: float  # mean cross-entropy over the epoch's batches
    train_acc: float  # fraction of the epoch's training rows classified right
    val_loss: float
    val_acc: float
    test_loss: float
    test_acc: float
    test_errors: int  # misclassified test digits
    learning_rate: float  # the rate used during this epoch
    seconds: float  # training time of the epoch (no evaluation, no pauses)
    eval_seconds: float  # time to evaluate validation and test sets
    samples_per_sec: float  # training rows per second of training time

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class BatchProgress:
    """Progress inside an epoch, passed to `on_batch` after every update."""

    epoch: int
    batch: int  # 1-based: batches done in this epoch
    batches: int  # batches per epoch
    loss: float  # this batch's loss
    rows: int = 0  # training rows done in this epoch so far
    seconds: float = 0.0  # training time of this epoch so far (as EpochMetrics.seconds counts it)

    @property
    def samples_per_sec(self) -> float | None:
        """Rows per second of training time in this epoch so far: the figure EpochMetrics
        reports for a whole epoch, so a live reading and a final one agree."""
        return self.rows / self.seconds if self.seconds > 0 else None


# A net that knows nothing predicts 1/C for every class and pays ln(C) (2.30 for digits).
# An epoch whose mean loss is this many times worse did not learn: its updates overshoot.
DIVERGENCE_FACTOR = 1.5


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite, or far worse than chance.

    The net is put back to the weights it had after the last good epoch.
    """

    def __init__(self, message: str, epoch: int):
        super().__init__(message)
        self.epoch = epoch


class TrainControl:
    """Steer a training loop from another thread (the loop looks between batches): pause,
    resume, stop, change the learning rate, train one more epoch and pause (step mode).

    What the loop did with it is read back here: `stopped_by` (the stop rule that ended
    the run, "" otherwise) and `lr_changes`, each (fractional epoch, new rate) at the batch
    that first used it.
    """

    def __init__(self):
        self._stop = threading.Event()
        self._running = threading.Event()
        self._running.set()
        self._lock = threading.Lock()
        self._new_rate: float | None = None
        self._pause_after_epoch = False
        self.stopped_by = ""
        self.kept_epoch: int | None = None  # early stopping: the 0-based epoch whose weights the net holds again
        self.stop_message = ""
        self.lr_changes: list[tuple[float, float]] = []

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def stop(self, rule: str = "", message: str = "") -> None:
        """Stop between batches; `rule` names the stop rule that asked (empty for a person)."""
        if rule and not self._stop.is_set():
            self.stopped_by, self.stop_message = rule, message
        self._stop.set()
        self._running.set()  # wake a paused loop so that it can end

    def set_learning_rate(self, rate: float) -> None:
        """Train with base rate `rate` from the next batch on (a schedule still applies on top)."""
        if not (math.isfinite(rate) and rate > 0):
            raise ValueError(f"learning rate must be a positive number (got {rate!r})")
        with self._lock:
            self._new_rate = float(rate)

    def asked_rate(self) -> float | None:
        """The base rate asked for last, taken by the loop or not yet; None if none was asked.
        A live control shows this, so it agrees with the run the moment a change is made."""
        with self._lock:
            if self._new_rate is not None:
                return self._new_rate
            return self.lr_changes[-1][1] if self.lr_changes else None

    def take_learning_rate(self) -> float | None:
        """The loop's side: a new base rate asked for since the last batch, once."""
        with self._lock:
            rate, self._new_rate = self._new_rate, None
            return rate

    def step(self) -> None:
        """Train until the end of the current epoch (or the next one, when paused between
        epochs), then pause."""
        with self._lock:
            self._pause_after_epoch = True
        self.resume()

    def epoch_ended(self) -> None:
        """The loop's side: an epoch just finished; pause here if a step asked for it."""
        with self._lock:
            pause, self._pause_after_epoch = self._pause_after_epoch, False
        if pause:
            self.pause()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def wait(self) -> bool:
        """Block while paused; True once a stop was asked for."""
        self._running.wait()
        return self._stop.is_set()


def learning_rate_at(config: TrainConfig, epoch: int, base: float | None = None) -> float:
    """The learning rate for a 0-based epoch, from `base` (default config.learning_rate;
    another one after a change made while the run trains).

    1. constant: the base rate throughout.
    2. cosine: from the base rate at epoch 0 down along half a cosine, reaching
       lr / (2 * epochs) ... 0 in the last epoch, never exactly 0 while training.
    """
    base = config.learning_rate if base is None else base
    if config.lr_schedule == "cosine":
        return base * 0.5 * (1 + math.cos(math.pi * epoch / config.epochs))
    return base


def batch_slices(n: int, batch_size: int, rng: np.random.Generator | None) -> Iterator[np.ndarray | slice]:
    """Indices of each batch of one epoch: slices in order, or a fresh permutation's chunks."""
    if rng is None:
        for start in range(0, n, batch_size):
            yield slice(start, start + batch_size)
    else:
        order = rng.permutation(n)
        for start in range(0, n, batch_size):
            yield order[start : start + batch_size]


def distortion_of(config: TrainConfig) -> Distortion | None:
    """The elastic and affine distortion a config asks for, None when it asks for none."""
    distortion = Distortion(alpha=config.augment_elastic, rotate=config.augment_rotate, scale=config.augment_scale)
    return None if distortion.none else distortion


def check_fits(config: TrainConfig, data: Mnist) -> None:
    """Refuse a config that cannot run on this data, naming the field."""
    n = len(data.x_train)
    if config.train_samples is not None and config.train_samples > n:
        raise ValueError(f"train_samples must be at most {n}, the training set's size (got {config.train_samples})")
    rows = config.train_samples or n
    if config.batch_size > rows:
        raise ValueError(f"batch_size must be at most {rows}, the number of training rows (got {config.batch_size})")


def train(
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
    """Train `net` in place, yielding an EpochMetrics after each epoch.

    Stops early, without a record for the unfinished epoch, when `control.stop()` is
    called. Raises TrainingDiverged when the loss or the weights stop being finite; the
    net is then put back to its weights after the last finished epoch.

    With `on_health`, each epoch's EpochHealth is handed to it just before the epoch's
    record is yielded. With `stop_rules`, a rule may end the run after an epoch (the time
    budget also inside one); `control.stopped_by` then names it, and early stopping puts
    the net and the optimiser back to the best epoch's state.

    To continue a run, pass the net with its weights after `start_epoch` epochs and the
    optimiser with its state (`make_optimizer` + `load_state`); the epochs from there on
    are the ones an uninterrupted run would have trained. A caller that keeps the
    optimiser can save its state after each yielded epoch.
    """
    check_fits(config, data)
    control = control or TrainControl()
    rows = config.train_samples or len(data.x_train)
    x, y = data.x_train[:rows], data.y_train[:rows]
    if optimizer is None:
        optimizer = make_optimizer(config.optimizer, config.learning_rate, config.momentum, config.weight_decay)
    batches = math.ceil(rows / config.batch_size)
    last_good = net.copy_params()
    probe = HealthProbe(initial_weights(config), batches) if on_health else None
    watch = StopWatch(stop_rules) if stop_rules is not None and stop_rules.any else None
    base_rate = config.learning_rate
    distortion = distortion_of(config)

    for epoch in range(start_epoch, config.epochs):
        # One generator per epoch drives everything random after init (the permutation and
        # the shifts), so an epoch is the same whether the run was continued or not.
        rng = np.random.default_rng([config.seed, 1, epoch])
        optimizer.learning_rate = learning_rate_at(config, epoch, base_rate)
        loss_sum, correct, seconds, done = 0.0, 0, 0.0, 0
        order = batch_slices(rows, config.batch_size, rng if config.shuffle else None)
        for batch, index in enumerate(order, start=1):
            if control.wait():
                return
            if (rate := control.take_learning_rate()) is not None:
                base_rate = rate
                optimizer.learning_rate = learning_rate_at(config, epoch, base_rate)
                control.lr_changes.append((epoch + (batch - 1) / batches, rate))
            started = time.perf_counter()
            if config.augment_shift:
                xb, yb = shifted_batch(x, y, index, config.augment_shift, rng)
            else:
                xb, yb = x[index], y[index]
            if distortion is not None:
                xb = distort(xb, distortion, rng)
            sampled = probe is not None and probe.sampled(batch)
            with np.errstate(over="ignore", invalid="ignore"):  # a diverging step is caught below
                loss, batch_correct, grads = net.loss_and_gradient(xb, yb)
                if math.isfinite(loss):
                    if sampled:
                        probe.before_update(net.params, grads)
                    optimizer.update(net.params, grads)
                    if sampled:
                        probe.after_update(net.params)
            if not math.isfinite(loss):
                net.set_params(last_good)
                raise TrainingDiverged(_diverged_message(loss, epoch, batch, optimizer.learning_rate), epoch)
            seconds += time.perf_counter() - started
            loss_sum += loss * len(yb)
            correct += batch_correct
            done += len(yb)
            if on_batch:
                on_batch(BatchProgress(epoch, batch, batches, loss, done, seconds))
            if watch is not None and batch < batches and watch.over_budget(seconds):
                decision = StopDecision(TIME_BUDGET, epoch)
                control.stop(decision.rule, decision.message(watch.rules))
                return

        started = time.perf_counter()
        with np.errstate(over="ignore", invalid="ignore"):
            if probe is not None:
                val, units, units_seconds = evaluate_watching_units(net, data.x_val, data.y_val)
            else:
                val = evaluate(net, data.x_val, data.y_val)
            test = evaluate(net, data.x_test, data.y_test)
        eval_seconds = time.perf_counter() - started
        if not (math.isfinite(val.loss) and net.params_finite()):
            net.set_params(last_good)
            raise TrainingDiverged(_diverged_message(float("nan"), epoch, batches, optimizer.learning_rate), epoch)
        chance = math.log(net.output_size)
        if loss_sum / rows > DIVERGENCE_FACTOR * chance:
            net.set_params(last_good)
            raise TrainingDiverged(
                f"training loss {loss_sum / rows:.2f} at epoch {epoch} is far above chance level ({chance:.2f}): "
                f"{_advice(epoch, optimizer.learning_rate)}",
                epoch,
            )
        last_good = net.copy_params()
        metrics = EpochMetrics(
            epoch=epoch,
            epochs=config.epochs,
            train_loss=loss_sum / rows,
            train_acc=correct / rows,
            val_loss=val.loss,
            val_acc=val.accuracy,
            test_loss=test.loss,
            test_acc=test.accuracy,
            test_errors=test.errors,
            learning_rate=optimizer.learning_rate,
            seconds=seconds,
            eval_seconds=eval_seconds,
            samples_per_sec=rows / seconds if seconds > 0 else float("inf"),
        )
        if probe is not None:
            on_health(probe.finish(epoch, net.params, units, net.activation, units_seconds))
        decision = None
        if watch is not None:
            decision = watch.after_epoch(metrics, lambda good=last_good: good, optimizer.state)
        control.epoch_ended()
        yield metrics
        if decision is not None:  # at the planned end too: early stopping still keeps the best weights
            if decision.rule == PATIENCE:
                net.set_params(watch.best_params)
                optimizer.load_state(watch.best_state)
                control.kept_epoch = decision.best_epoch
            control.stop(decision.rule, decision.message(watch.rules))
            return


def _diverged_message(loss: float, epoch: int, batch: int, learning_rate: float) -> str:
    return f"loss became {'NaN' if math.isnan(loss) else loss} at epoch {epoch}, batch {batch}: " + _advice(
        epoch, learning_rate
    )


def _advice(epoch: int, learning_rate: float) -> str:
    kept = f"after epoch {epoch - 1}" if epoch > 0 else "from initialisation"
    return f"the learning rate ({learning_rate:g}) is probably too high; the weights are kept as they were {kept}"
