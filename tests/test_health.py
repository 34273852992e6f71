"""Health figures, checked against arithmetic done by hand on a 2-2-2 net."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nets.config import TrainConfig
from nets.evaluation import evaluate
from nets.health import EpochHealth, HealthProbe, UnitActivity, evaluate_watching_units, histogram, initial_weights, rms
from nets.optimizers import SGD
from nets.training import train
from nets.two_layer_net import TwoLayerNet


def tiny_net(activation: str = "relu") -> TwoLayerNet:
    net = TwoLayerNet(input_size=2, hidden_size=2, output_size=2, activation=activation, dtype="float64")
    net.set_params({"W1": np.array([[1.0, 0.0], [0.0, 2.0]]), "b1": np.zeros(2),
                    "W2": np.array([[3.0, 0.0], [0.0, 4.0]]), "b2": np.zeros(2)})  # fmt: skip
    return net


def test_gradient_norm_is_per_weight_and_update_ratio_is_step_over_weight():
    net = tiny_net()
    initial = {"W1": net.params["W1"].copy(), "W2": net.params["W2"].copy()}
    probe = HealthProbe(initial, batches=1)
    grads = {"W1": np.full((2, 2), 1.0), "b1": np.zeros(2), "W2": np.full((2, 2), 2.0), "b2": np.zeros(2)}
    probe.before_update(net.params, grads)
    SGD(0.1).update(net.params, grads)
    probe.after_update(net.params)
    units = UnitActivity(np.array([True, False]), np.zeros(2, dtype=int), rows=4)
    health = probe.finish(0, net.params, units, "relu")
    # |g| / sqrt(4 weights): W1 all ones -> 2 / 2 = 1; W2 all twos -> 4 / 2 = 2. A layer of
    # ones four times the size would still read 1.
    assert health.grad_rms == {"W1": pytest.approx(1.0), "W2": pytest.approx(2.0)}
    # SGD step = 0.1 * g: |step W1| = 0.1 * 2 = 0.2 over |W1| = sqrt(1 + 4); W2: 0.1 * 4 over 5.
    assert health.update_ratio["W1"] == pytest.approx(0.2 / math.sqrt(5))
    assert health.update_ratio["W2"] == pytest.approx(0.4 / 5)
    assert health.dead_share == 0.5 and health.saturated_share is None
    assert health.seconds >= 0


def test_rms_of_a_big_layer_equals_a_small_one_with_the_same_entries():
    assert rms(np.full((10, 10), 3.0)) == pytest.approx(rms(np.full((2, 2), 3.0))) == pytest.approx(3.0)


def test_dead_units_are_those_never_active_on_the_set():
    net = tiny_net()
    net.params["W1"][:] = [[1.0, -1.0], [1.0, -1.0]]  # unit 1 = relu(-(x0 + x1)) = 0 for x >= 0
    x = np.array([[0.5, 0.1], [0.0, 0.2], [0.3, 0.3]])
    _, units, _ = evaluate_watching_units(net, x, np.array([0, 1, 0]))
    assert units.ever_active.tolist() == [True, False] and units.dead_share() == 0.5


@pytest.mark.parametrize("activation", ["sigmoid", "tanh"])
def test_saturated_units_are_flat_on_most_digits(activation):
    net = tiny_net(activation)
    net.params["W1"][:] = [[100.0, 0.01], [100.0, 0.01]]  # unit 0 pinned at 1, unit 1 near its middle
    x = np.array([[0.5, 0.1], [0.1, 0.2], [0.3, 0.3], [0.2, 0.9]])
    _, units, _ = evaluate_watching_units(net, x, np.array([0, 1, 0, 1]))
    assert units.saturated_rows.tolist() == [4, 0] and units.saturated_share() == 0.5


def test_watching_the_units_changes_no_number_of_the_evaluation(tiny_data):
    net = TwoLayerNet.from_config(TrainConfig(hidden_size=16))
    plain = evaluate(net, tiny_data.x_val, tiny_data.y_val)
    watched, _, _ = evaluate_watching_units(net, tiny_data.x_val, tiny_data.y_val)
    assert np.array_equal(plain.probs, watched.probs) and plain.loss == watched.loss


def test_histogram_bins_both_sets_on_the_same_symmetric_edges():
    h = histogram(np.array([-1.0, 0.5, 1.0]), np.zeros(2), bins=4)
    assert h.edges == (-1.0, -0.5, 0.0, 0.5, 1.0)
    assert h.counts == (1, 0, 0, 2)  # 1.0 is the last edge: in the last bin, like np.histogram
    assert h.initial == (0, 0, 2, 0)
    assert h.counts == tuple(np.histogram([-1.0, 0.5, 1.0], bins=h.edges)[0])


def test_train_hands_one_health_record_per_epoch_and_trains_exactly_the_same(tiny_data):
    config = TrainConfig(hidden_size=16, batch_size=30, epochs=3, learning_rate=0.01)
    health: list[EpochHealth] = []
    watched = list(train(TwoLayerNet.from_config(config), tiny_data, config, on_health=health.append))
    plain = list(train(TwoLayerNet.from_config(config), tiny_data, config))
    timing = ("seconds", "eval_seconds", "samples_per_sec")
    strip = [{k: v for k, v in m.to_dict().items() if k not in timing} for m in watched]
    assert strip == [{k: v for k, v in m.to_dict().items() if k not in timing} for m in plain]
    assert [h.epoch for h in health] == [0, 1, 2]
    first = health[0]
    assert set(first.grad_rms) == {"W1", "W2"} and all(v > 0 for v in first.grad_rms.values())
    assert all(0 < v < 1 for v in first.update_ratio.values())
    assert 0 <= first.dead_share <= 1 and first.saturated_share is None
    start = initial_weights(config)
    edges = first.histograms["W1"].edges
    assert first.histograms["W1"].initial == tuple(np.histogram(start["W1"], bins=edges)[0])
    assert sum(first.histograms["W1"].counts) == sum(first.histograms["W1"].initial) == 784 * 16
    assert EpochHealth.from_dict(first.to_dict()) == first


def test_initial_weights_are_the_runs_own_starting_weights():
    config = TrainConfig(hidden_size=8, seed=3)
    assert np.array_equal(initial_weights(config)["W1"], TwoLayerNet.from_config(config).params["W1"])
