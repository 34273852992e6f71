"""Stop rules (patience, time budget, target accuracy), the live learning-rate change and
step mode: in the engine, with constructed histories and tiny runs."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json

import numpy as np
import pytest

from nets.config import TrainConfig
from nets.optimizers import SGD
from nets.recorder import Recorder
from nets.stopping import PATIENCE, TARGET_VAL_ACC, TIME_BUDGET, StopRules, StopWatch
from nets.store import RunStore
from nets.train import main as train_main
from nets.training import EpochMetrics, TrainControl, learning_rate_at, train
from nets.two_layer_net import TwoLayerNet


def metrics(epoch: int, val_loss: float, val_acc: float = 0.5, seconds: float = 1.0) -> EpochMetrics:
    return EpochMetrics(epoch=epoch, epochs=100, train_loss=1.0, train_acc=0.5, val_loss=val_loss, val_acc=val_acc,
                        test_loss=1.0, test_acc=0.5, test_errors=5, learning_rate=0.1, seconds=seconds,
                        eval_seconds=0.0, samples_per_sec=100.0)  # fmt: skip


def run_watch(rules: StopRules, history: list[EpochMetrics]):
    watch = StopWatch(rules)
    for m in history:
        decision = watch.after_epoch(m, lambda e=m.epoch: {"epoch": e}, dict)
        if decision is not None:
            return decision, watch
    return None, watch


def test_patience_counts_epochs_since_the_best_validation_loss():
    losses = [1.0, 0.8, 0.9, 0.85, 0.7]
    decision, watch = run_watch(StopRules(patience=2), [metrics(e, v) for e, v in enumerate(losses)])
    assert decision is not None and decision.rule == PATIENCE
    assert decision.epochs == 4 and decision.best_epoch == 1 and watch.best_params == {"epoch": 1}
    assert "epoch 2" in decision.message(watch.rules)  # told 1-based, as the charts count


def test_patience_is_not_reached_while_the_loss_keeps_improving_within_it():
    losses = [1.0, 0.8, 0.9, 0.7, 0.75, 0.6]
    assert run_watch(StopRules(patience=2), [metrics(e, v) for e, v in enumerate(losses)])[0] is None


def test_target_accuracy_and_time_budget():
    decision, _ = run_watch(StopRules(target_val_acc=0.9), [metrics(0, 1, 0.5), metrics(1, 1, 0.91)])
    assert decision.rule == TARGET_VAL_ACC and decision.epochs == 2
    decision, _ = run_watch(StopRules(time_budget=2.5), [metrics(e, 1.0, seconds=1.0) for e in range(5)])
    assert decision.rule == TIME_BUDGET and decision.epochs == 3


@pytest.mark.parametrize(
    "fields", [{"patience": 0}, {"time_budget": -1.0}, {"time_budget": float("nan")}, {"target_val_acc": 1.5}]
)
def test_bad_rules_are_refused_naming_the_field(fields):
    with pytest.raises(ValueError, match=next(iter(fields))):
        StopRules(**fields)


def noisy(data, share: float = 0.5, seed: int = 0):
    """The data with `share` of the training labels drawn at random: a net that learns them by
    heart gets worse on the validation set, epoch after epoch."""
    rng = np.random.default_rng(seed)
    y = data.y_train.copy()
    flip = rng.random(len(y)) < share
    y[flip] = rng.integers(0, 10, flip.sum())
    return dataclasses.replace(data, y_train=y)


def test_early_stopping_keeps_the_best_epochs_weights(tiny_data):
    tiny_data = noisy(tiny_data)
    config = TrainConfig(hidden_size=64, batch_size=10, epochs=40, learning_rate=0.01, lr_schedule="constant")
    net, control = TwoLayerNet.from_config(config), TrainControl()
    after: list[dict] = []
    history = []
    for m in train(net, tiny_data, config, control=control, stop_rules=StopRules(patience=2)):
        history.append(m)
        after.append(net.copy_params())
    best = min(range(len(history)), key=lambda e: history[e].val_loss)
    assert control.stopped_by == PATIENCE and len(history) == best + 3 < 40
    for name in ("W1", "b1", "W2", "b2"):
        assert np.array_equal(net.params[name], after[best][name]), name


def test_time_budget_stops_inside_an_epoch_and_target_after_one(tiny_data):
    config = TrainConfig(hidden_size=16, batch_size=10, epochs=5)
    control = TrainControl()
    history = list(train(TwoLayerNet.from_config(config), tiny_data, config, control=control,
                         stop_rules=StopRules(time_budget=1e-9)))  # fmt: skip
    assert history == [] and control.stopped_by == TIME_BUDGET
    control = TrainControl()
    history = list(train(TwoLayerNet.from_config(config), tiny_data, config, control=control,
                         stop_rules=StopRules(target_val_acc=0.01)))  # fmt: skip
    assert len(history) == 1 and control.stopped_by == TARGET_VAL_ACC


class RateSpy(SGD):
    """SGD that notes the rate of every update."""

    def __init__(self, learning_rate):
        super().__init__(learning_rate)
        self.rates: list[float] = []

    def update(self, params, grads):
        self.rates.append(self.learning_rate)
        super().update(params, grads)


def test_a_new_learning_rate_is_used_from_the_next_batch_and_recorded(tiny_data):
    config = TrainConfig(
        hidden_size=16, optimizer="sgd", learning_rate=0.1, lr_schedule="cosine", batch_size=100, epochs=2
    )  # fmt: skip  (3 batches an epoch)
    control, spy = TrainControl(), RateSpy(0.1)

    def on_batch(progress):
        if progress.epoch == 0 and progress.batch == 1:
            control.set_learning_rate(0.5)

    history = list(train(TwoLayerNet.from_config(config), tiny_data, config, control=control, optimizer=spy,
                         on_batch=on_batch))  # fmt: skip
    assert spy.rates[:3] == [0.1, 0.5, 0.5]  # batch 1 at the old rate, batches 2 and 3 at the new
    assert spy.rates[3:] == [pytest.approx(learning_rate_at(config, 1, 0.5))] * 3  # the schedule goes on from it
    assert control.lr_changes == [(pytest.approx(1 / 3), 0.5)]
    assert history[0].learning_rate == 0.5
    with pytest.raises(ValueError):
        control.set_learning_rate(0.0)


def test_step_trains_one_epoch_then_pauses(tiny_data):
    config = TrainConfig(hidden_size=16, batch_size=100, epochs=3)
    control = TrainControl()
    control.pause()
    control.step()
    assert not control.paused
    loop = train(TwoLayerNet.from_config(config), tiny_data, config, control=control)
    assert next(loop).epoch == 0 and control.paused
    control.resume()
    assert [m.epoch for m in loop] == [1, 2]


def cli_json(*args) -> tuple[int, list[dict], str]:
    """python -m nets.train in this process: (status, JSON objects printed, stderr)."""
    with contextlib.redirect_stdout(io.StringIO()) as out, contextlib.redirect_stderr(io.StringIO()) as err:
        try:
            status = train_main([str(a) for a in args])
        except SystemExit as exc:
            status = exc.code
    return status, [json.loads(line) for line in out.getvalue().splitlines() if line.startswith("{")], err.getvalue()


QUICK = ("--hidden", 16, "--batch-size", 100, "--epochs", 4, "--no-record", "--json")


def test_cli_target_accuracy_says_stopped_by_and_prints_health_each_epoch(synthetic_dir):
    status, objects, err = cli_json("--data-dir", synthetic_dir, *QUICK, "--target-val-acc", 0.01)
    assert status == 0, err
    *epochs, final = objects
    assert len(epochs) == 1 and final["stopped_by"] == "target_val_acc" and final["epochs"] == 1
    health = epochs[0]["health"]
    assert health["epoch"] == 0 and set(health["grad_rms"]) == {"W1", "W2"} and 0 <= health["dead_share"] <= 1
    assert len(health["histograms"]["W1"]["counts"]) == 40
    assert "target validation accuracy" in err


def test_cli_runs_all_epochs_without_a_rule_and_refuses_bad_rules(synthetic_dir):
    status, objects, _ = cli_json("--data-dir", synthetic_dir, *QUICK)
    assert status == 0 and objects[-1]["stopped_by"] is None and objects[-1]["epochs"] == 4
    status, objects, err = cli_json("--data-dir", synthetic_dir, *QUICK, "--patience", 0)
    assert status == 2 and objects == [] and len(err.strip().splitlines()) == 1 and "patience" in err


def test_cli_time_budget_can_end_a_run_inside_its_first_epoch(synthetic_dir):
    status, objects, _ = cli_json("--data-dir", synthetic_dir, *QUICK, "--batch-size", 10, "--time-budget", 1e-9)
    assert status == 0 and objects == [{"final": True, "epochs": 0, "stopped_by": "time_budget", "run_id": None}]


def test_early_stopping_makes_the_kept_epochs_weights_the_stored_runs_model(tmp_path, tiny_data):
    """The message says the best epoch's weights were kept: the store says so too, so a
    restart, an export or a continued run gets that model, not the last epoch's."""
    store = RunStore(tmp_path)
    # On the tiny digits this rate makes the validation loss rise after the first epoch.
    config = TrainConfig(hidden_size=8, epochs=30, batch_size=50, learning_rate=0.7, optimizer="sgd")
    run_id = store.create_run(config, source="cli")
    net, control = TwoLayerNet.from_config(config), TrainControl()
    history = list(Recorder(store, run_id).train(net, tiny_data, config, control=control,
                                                 stop_rules=StopRules(patience=2)))  # fmt: skip
    assert control.stopped_by == "patience" and len(history) == 3
    assert min(history, key=lambda m: m.val_loss).epoch == 0  # the first epoch was the best
    assert [s.epochs for s in store.snapshots(run_id)] == [1]  # the later weights are gone
    kept = store.load(run_id)
    assert kept.meta["epochs_trained"] == 1 and kept.meta["kept_by"] == "patience"
    for name, value in net.params.items():  # the net the run ended with: the best epoch's
        np.testing.assert_array_equal(kept.net.params[name], value)
    assert len(store.history(run_id)) == 3 and store.run(run_id).status == "stopped"  # its metrics all stay
