"""Learning-rate changes made while a run trains are kept with its epochs, so its curves
mark them after the run (and after a reload or a server restart) as they did live."""

from nets.config import TrainConfig
from nets.recorder import Recorder
from nets.store import RunStore
from nets.training import TrainControl
from nets.two_layer_net import TwoLayerNet


def test_each_change_is_kept_with_the_epoch_it_was_made_in(tmp_path, tiny_data):
    store = RunStore(tmp_path)
    config = TrainConfig(hidden_size=8, epochs=3, batch_size=50)
    run_id = store.create_run(config, source="cli")
    control = TrainControl()
    control.set_learning_rate(0.01)  # taken by the first batch
    for metrics in Recorder(store, run_id).train(TwoLayerNet.from_config(config), tiny_data, config, control=control):
        if metrics.epoch == 1:
            control.set_learning_rate(0.002)  # taken by the first batch of epoch 2 (0-based)
    assert control.lr_changes == [(0.0, 0.01), (2.0, 0.002)]
    assert store.lr_changes(run_id) == [(0.0, 0.01), (2.0, 0.002)]
    assert len(store.history(run_id)) == 3  # the metrics read as before


def test_a_run_without_changes_has_none(tmp_path, tiny_data):
    store = RunStore(tmp_path)
    config = TrainConfig(hidden_size=8, epochs=2, batch_size=50)
    run_id = store.create_run(config, source="cli")
    list(Recorder(store, run_id).train(TwoLayerNet.from_config(config), tiny_data, config))
    assert store.lr_changes(run_id) == []
