"""The training loop on tiny synthetic data: records, learning, seeds, control, divergence."""

import itertools
import threading
import time

import numpy as np
import pytest

from nets.config import TrainConfig
from nets.optimizers import make_optimizer
from nets.training import (
    BatchProgress,
    EpochMetrics,
    TrainControl,
    TrainingDiverged,
    batch_slices,
    learning_rate_at,
    train,
)
from nets.two_layer_net import TwoLayerNet

SMALL = TrainConfig(hidden_size=32, batch_size=50, epochs=2, learning_rate=1e-2, lr_schedule="constant")


def run(data, config=SMALL, **kwargs):
    net = TwoLayerNet.from_config(config)
    return net, list(train(net, data, config, **kwargs))


def test_yields_one_complete_record_per_epoch(tiny_data):
    _, history = run(tiny_data)
    assert [m.epoch for m in history] == [0, 1]
    for m in history:
        assert isinstance(m, EpochMetrics)
        assert m.epochs == 2
        assert 0 <= m.train_acc <= 1 and 0 <= m.val_acc <= 1 and 0 <= m.test_acc <= 1
        assert m.test_errors == round((1 - m.test_acc) * 100)
        assert m.seconds > 0 and m.samples_per_sec == pytest.approx(300 / m.seconds)
        assert set(m.to_dict()) >= {"epoch", "train_loss", "val_loss", "val_acc", "test_acc", "seconds"}


def test_loss_falls_and_accuracy_rises(tiny_data):
    config = SMALL.replace(epochs=4)
    net = TwoLayerNet.from_config(config)
    before = net.loss(tiny_data.x_val, tiny_data.y_val)
    history = list(train(net, tiny_data, config))
    assert history[-1].train_loss < history[0].train_loss
    assert history[-1].val_loss < before / 2
    assert history[-1].val_acc > 0.9


def test_same_seed_same_history_other_seed_differs(tiny_data):
    config = SMALL.replace(shuffle=True)
    net_a, a = run(tiny_data, config)
    net_b, b = run(tiny_data, config)
    _, c = run(tiny_data, config.replace(seed=1))
    strip = lambda h: [(m.train_loss, m.val_loss, m.test_acc) for m in h]  # noqa: E731 (times differ)
    assert strip(a) == strip(b)
    np.testing.assert_array_equal(net_a.params["W1"], net_b.params["W1"])
    assert strip(a) != strip(c)


def test_sequential_batches_are_in_order():
    assert [s for s in batch_slices(250, 100, None)] == [slice(0, 100), slice(100, 200), slice(200, 300)]
    chunks = list(batch_slices(250, 100, np.random.default_rng(0)))
    assert [len(c) for c in chunks] == [100, 100, 50]
    assert sorted(np.concatenate(chunks)) == list(range(250))  # a permutation: each row once


def test_batch_progress_callback(tiny_data):
    seen: list[BatchProgress] = []
    run(tiny_data, SMALL.replace(batch_size=120), on_batch=seen.append)
    assert [(p.epoch, p.batch, p.batches) for p in seen] == [(e, b, 3) for e in (0, 1) for b in (1, 2, 3)]


def test_train_samples_uses_the_first_rows(tiny_data):
    _, history = run(tiny_data, SMALL.replace(train_samples=100))
    assert history[0].samples_per_sec == pytest.approx(100 / history[0].seconds)


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"batch_size": 301}, "batch_size must be at most 300"),
        ({"train_samples": 301}, "train_samples must be at most 300"),
    ],
)
def test_config_that_does_not_fit_the_data_is_refused(tiny_data, changes, message):
    with pytest.raises(ValueError, match=message):
        run(tiny_data, SMALL.replace(**changes))


def test_cosine_schedule():
    config = TrainConfig(learning_rate=0.1, lr_schedule="cosine", epochs=4)
    rates = [learning_rate_at(config, e) for e in range(4)]
    assert rates[0] == 0.1 and rates == sorted(rates, reverse=True) and rates[-1] > 0
    assert rates[2] == pytest.approx(0.05)
    assert learning_rate_at(config.replace(lr_schedule="constant"), 3) == 0.1


def test_stop_from_another_thread_during_the_first_epoch(tiny_data):
    control = TrainControl()
    config = SMALL.replace(batch_size=10, epochs=50)
    batches = []

    def on_batch(p):
        batches.append(p)
        if len(batches) == 3:
            threading.Thread(target=control.stop).start()
            time.sleep(0.05)

    _, history = run(tiny_data, config, control=control, on_batch=on_batch)
    assert history == [] and control.stopped
    assert 3 <= len(batches) < 30  # ended within the first epoch


def test_pause_blocks_between_batches_then_resume_and_stop(tiny_data):
    control = TrainControl()
    config = SMALL.replace(batch_size=10, epochs=1000)
    net = TwoLayerNet.from_config(config)
    count = {"batches": 0}
    records = []

    def worker():
        for m in train(
            net,
            tiny_data,
            config,
            control=control,
            on_batch=lambda p: count.__setitem__("batches", count["batches"] + 1),
        ):
            records.append(m)

    thread = threading.Thread(target=worker)
    thread.start()
    while count["batches"] < 5:
        time.sleep(0.001)
    control.pause()
    time.sleep(0.05)
    frozen = count["batches"]
    time.sleep(0.2)
    assert control.paused and count["batches"] == frozen  # nothing ran while paused
    control.resume()
    while count["batches"] < frozen + 5:
        time.sleep(0.001)
    control.pause()
    control.stop()  # pause then stop: the loop wakes up and ends
    thread.join(timeout=5)
    assert not thread.is_alive()
    # One record per whole epoch of 30 batches, none for the epoch the stop cut short.
    assert [m.epoch for m in records] == list(range(count["batches"] // 30))


def test_paused_time_is_not_counted(tiny_data):
    control = TrainControl()
    config = SMALL.replace(epochs=1, batch_size=30)

    def on_batch(p):
        if p.batch == 2:
            control.pause()
            threading.Timer(0.3, control.resume).start()

    started = time.perf_counter()
    _, history = run(tiny_data, config, control=control, on_batch=on_batch)
    wall = time.perf_counter() - started
    assert history[0].seconds <= wall - 0.3  # the epoch's time leaves the pause out, however busy the machine


def test_nan_at_a_later_epoch_diverges_and_restores_last_good_weights(tiny_data):
    config = SMALL.replace(epochs=5)
    net = TwoLayerNet.from_config(config)
    snapshots = []

    def on_batch(p):  # an overflow in epoch 2, as a too-large step would cause
        if p.epoch == 2 and p.batch == 2:
            net.params["W2"][0, 0] = np.inf

    with pytest.raises(
        TrainingDiverged, match=r"loss became NaN at epoch 2, batch 3: the learning rate .* after epoch 1"
    ) as info:
        for m in train(net, tiny_data, config, on_batch=on_batch):
            snapshots.append((m, net.copy_params()))
    assert info.value.epoch == 2
    assert [m.epoch for m, _ in snapshots] == [0, 1]
    assert net.params_finite()
    for name, array in snapshots[-1][1].items():
        np.testing.assert_array_equal(net.params[name], array)


def test_non_finite_input_diverges_in_epoch_0(tiny_data):
    config = SMALL.replace(epochs=1)
    net = TwoLayerNet.from_config(config)
    initial = net.copy_params()
    bad = tiny_data.x_train.copy()
    bad[60] = np.float32(3e38)  # overflows to inf in the first layer, in batch 2, then NaN
    data = type(tiny_data)(bad, tiny_data.y_train, tiny_data.x_val, tiny_data.y_val, tiny_data.x_test, tiny_data.y_test)
    with (
        np.errstate(all="ignore"),
        pytest.raises(TrainingDiverged, match=r"NaN at epoch 0, batch \d+: .* from initialisation"),
    ):
        list(train(net, data, config))
    np.testing.assert_array_equal(net.params["W1"], initial["W1"])


def test_a_loss_far_above_chance_is_divergence(tiny_data):
    # SGD with lr 10 on this data overshoots: the epoch's loss is far above ln(10).
    config = SMALL.replace(optimizer="sgd", learning_rate=10.0, init="he", epochs=3, batch_size=10)
    with pytest.raises(TrainingDiverged, match=r"far above chance level \(2.30\)"):
        run(tiny_data, config)


def test_continuing_from_start_epoch_is_the_uninterrupted_run(tiny_data):
    """Weights and optimiser state after 2 epochs, then epochs 2-3 with start_epoch=2: the
    same numbers as 4 epochs at once (shuffle, shifts, Adam and the cosine rate included)."""
    config = TrainConfig(hidden_size=16, batch_size=30, epochs=4, augment_shift=1, optimizer="adam", seed=3)
    net = TwoLayerNet.from_config(config)
    straight = list(train(net, tiny_data, config))

    half = TwoLayerNet.from_config(config)
    optimizer = make_optimizer(config.optimizer, config.learning_rate)
    first = list(itertools.islice(train(half, tiny_data, config, optimizer=optimizer), 2))
    state = optimizer.state()
    resumed = make_optimizer(config.optimizer, config.learning_rate)
    resumed.load_state(state)
    rest = list(train(half, tiny_data, config, optimizer=resumed, start_epoch=2))
    assert [m.epoch for m in first + rest] == [0, 1, 2, 3]
    assert [(m.train_loss, m.val_loss, m.test_acc) for m in first + rest] == [
        (m.train_loss, m.val_loss, m.test_acc) for m in straight
    ]
    for key in net.params:
        np.testing.assert_array_equal(half.params[key], net.params[key])
