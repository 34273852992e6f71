"""Advice rules on constructed histories (each fires, and stays quiet on a healthy run),
and on real runs that earn them."""

from __future__ import annotations

import pytest

from nets.advice import (
    DEAD_UNITS,
    LR_TOO_HIGH,
    LR_TOO_LOW,
    OVERFITTING,
    SATURATED_UNITS,
    UNDERFITTING,
    advise,
)
from nets.config import TrainConfig
from nets.health import EpochHealth
from nets.training import EpochMetrics, TrainingDiverged, train
from nets.two_layer_net import TwoLayerNet

SGD = TrainConfig(optimizer="sgd", learning_rate=0.1, lr_schedule="constant", hidden_size=128, epochs=20)


def history(train_losses, val_losses=None, train_acc=0.9, val_acc=0.9) -> list[EpochMetrics]:
    val_losses = val_losses or train_losses
    return [
        EpochMetrics(epoch=e, epochs=20, train_loss=t, train_acc=train_acc, val_loss=v, val_acc=val_acc, test_loss=v,
                     test_acc=val_acc, test_errors=100, learning_rate=0.1, seconds=1.0, eval_seconds=0.1,
                     samples_per_sec=1000.0)
        for e, (t, v) in enumerate(zip(train_losses, val_losses, strict=True))
    ]  # fmt: skip


def health(dead=None, saturated=None) -> list[EpochHealth]:
    return [EpochHealth(0, {"W1": 1e-3, "W2": 1e-2}, {"W1": 1e-3, "W2": 1e-3}, dead, saturated, {}, 0.0)]


def rules(findings) -> list[str]:
    return [f.rule for f in findings]


HEALTHY = [1.0, 0.5, 0.3, 0.2, 0.15]


def test_a_healthy_run_gets_no_advice():
    assert advise(SGD, history(HEALTHY), health(dead=0.05)) == []


def test_too_young_to_judge():
    assert advise(SGD, history([2.0, 2.1])) == []


def test_diverged_run_asks_for_a_much_lower_rate_live():
    (finding,) = advise(SGD, history([]), diverged=True)
    assert finding.rule == LR_TOO_HIGH and finding.evidence["diverged"] == 1.0
    assert finding.live_changes == {"learning_rate": pytest.approx(0.01)}


def test_a_loss_worse_than_guessing_means_the_rate_is_far_too_high_after_one_epoch():
    (finding,) = advise(SGD.replace(learning_rate=10.0), history([3.2]))
    assert finding.rule == LR_TOO_HIGH and finding.evidence["above_chance"] == 3.2
    assert finding.live_changes == {"learning_rate": pytest.approx(1.0)}
    assert rules(advise(SGD, history([3.2, 3.2, 3.2, 3.2]))) == [LR_TOO_HIGH]  # not underfitting


def test_rising_loss_means_the_rate_is_too_high():
    (finding,) = advise(SGD, history([1.0, 0.6, 0.7, 0.9]))
    assert finding.rule == LR_TOO_HIGH and finding.changes == {"learning_rate": pytest.approx(0.1 / 3)}


def test_oscillating_loss_means_the_rate_is_too_high():
    assert rules(advise(SGD, history([1.0, 0.6, 0.8, 0.55, 0.75]))) == [LR_TOO_HIGH]
    assert advise(SGD, history([1.0, 0.6, 0.45, 0.4, 0.38])) == []  # a fall that slows down is no swing


def test_slow_steady_fall_means_the_rate_is_too_low():
    (finding,) = advise(SGD, history([1.5, 1.45, 1.42, 1.40]))
    assert finding.rule == LR_TOO_LOW and finding.changes == {"learning_rate": pytest.approx(0.3)}
    assert finding.evidence["fall_per_epoch"] == pytest.approx((1.45 - 1.40) / 1.45 / 2)  # over the last 3 epochs


def test_high_and_flat_is_underfitting():
    (finding,) = advise(SGD, history([1.2, 1.2, 1.199, 1.2]))
    assert finding.rule == UNDERFITTING and finding.changes == {"hidden_size": 256, "epochs": 40}


def test_validation_loss_rising_while_training_falls_is_overfitting():
    found = advise(SGD, history([0.5, 0.3, 0.2, 0.1, 0.05], [0.5, 0.35, 0.36, 0.4, 0.45]))
    (finding,) = found
    assert finding.rule == OVERFITTING and finding.evidence["best_epoch"] == 2
    assert finding.changes == {"weight_decay": 1e-4, "epochs": 2, "augment_shift": 1}
    assert finding.live_changes == {}
    # one epoch of rise is not yet a trend
    assert advise(SGD, history([0.5, 0.3, 0.2, 0.1], [0.5, 0.35, 0.34, 0.4])) == []


def test_dead_units_with_relu_and_saturated_units_with_sigmoid():
    (finding,) = advise(SGD.replace(init="std"), history(HEALTHY), health(dead=0.4))
    assert finding.rule == DEAD_UNITS and finding.changes == {"learning_rate": pytest.approx(0.1 / 3), "init": "he"}
    sigmoid = SGD.replace(activation="sigmoid", init="std")
    (finding,) = advise(sigmoid, history(HEALTHY), health(saturated=0.6))
    assert finding.rule == SATURATED_UNITS and finding.changes["init"] == "xavier"
    assert advise(sigmoid, history(HEALTHY), health(saturated=0.1)) == []


@pytest.mark.slow
def test_real_runs_earn_advice(mnist):
    """The issue's example: SGD, 16 hidden units, no decay, 1,000 training digits. At lr 5 it
    diverges in its first epoch (too high); at lr 0.5 it learns the 1,000 digits by heart and
    the validation loss turns up (overfitting)."""
    config = TrainConfig(optimizer="sgd", learning_rate=5.0, lr_schedule="constant", hidden_size=16,
                         train_samples=1000, epochs=100)  # fmt: skip
    with pytest.raises(TrainingDiverged):
        list(train(TwoLayerNet.from_config(config), mnist, config))
    assert rules(advise(config, [], diverged=True)) == [LR_TOO_HIGH]

    config = config.replace(learning_rate=0.5, epochs=30)
    seen, done, first = [], [], None
    for metrics in train(TwoLayerNet.from_config(config), mnist, config, on_health=seen.append):
        done.append(metrics)
        if first is None and OVERFITTING in rules(advise(config, done, seen)):
            first = metrics.epoch  # rules are evaluated after every epoch
    assert first is not None and first < 29
    (finding,) = [f for f in advise(config, done, seen) if f.rule == OVERFITTING]
    assert finding.changes["epochs"] == finding.evidence["best_epoch"] < 30
