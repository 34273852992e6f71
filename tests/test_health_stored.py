"""A run's health per epoch is kept in the store, so a stored run shows it as a live one did."""

from nets.config import TrainConfig
from nets.health import EpochHealth
from nets.recorder import Recorder
from nets.store import RunStore
from nets.two_layer_net import TwoLayerNet


def test_each_measured_epoch_keeps_its_health_and_reads_back_equal(tmp_path, tiny_data):
    store = RunStore(tmp_path)
    config = TrainConfig(hidden_size=8, epochs=3, batch_size=50)
    seen: list[EpochHealth] = []
    run_id = store.create_run(config, source="cli")
    list(Recorder(store, run_id).train(TwoLayerNet.from_config(config), tiny_data, config, on_health=seen.append))
    stored = [EpochHealth.from_dict(h) for h in store.health(run_id)]
    assert [h.epoch for h in stored] == [0, 1, 2] and stored == seen
    assert len(store.history(run_id)) == 3  # the metrics read as before


def test_a_run_trained_without_health_has_none_stored(tmp_path, tiny_data):
    store = RunStore(tmp_path)
    config = TrainConfig(hidden_size=8, epochs=2, batch_size=50)
    run_id = store.create_run(config, source="cli")
    list(Recorder(store, run_id).train(TwoLayerNet.from_config(config), tiny_data, config))
    assert store.health(run_id) == [] and len(store.history(run_id)) == 2
