"""The learning check: the float64 engine learns exactly as the notebook's loop does.

From the same initial weights, the `seed` recipe (plain SGD, sequential batches) in the
engine at float64 must make the same mistakes at every epoch as bench/reference.py, the
notebook written the plain way. Every speed-up of the engine has to keep this.
"""

import numpy as np
import pytest
from conftest import tiny_mnist

from bench.reference import NotebookNet
from nets.config import PRESETS
from nets.training import train
from nets.two_layer_net import TwoLayerNet


def same_learning(data, config, epochs: int) -> None:
    config = config.replace(dtype="float64", epochs=epochs)
    net = TwoLayerNet.from_config(config)
    reference = NotebookNet(net.copy_params())
    for metrics in train(net, data, config):
        reference.epoch(data.x_train, data.y_train, config.batch_size, config.learning_rate)
        expected = reference.predict(data.x_test).argmax(axis=1)
        got = net.predict(data.x_test).argmax(axis=1)
        assert np.array_equal(got, expected), f"epoch {metrics.epoch}: {np.flatnonzero(got != expected)}"
        assert metrics.test_errors == int((expected != data.y_test).sum())
        for name in ("W1", "b1", "W2", "b2"):
            np.testing.assert_allclose(net.params[name], reference.params[name], rtol=0, atol=1e-9, err_msg=name)


def test_the_float64_engine_learns_as_the_notebook_does_on_small_data():
    data = tiny_mnist(n_train=2000, n_val=100, n_test=500)
    config = PRESETS["seed"].replace(hidden_size=32, batch_size=100, learning_rate=0.5)
    same_learning(data, config, epochs=6)


@pytest.mark.slow
def test_the_float64_engine_makes_the_notebooks_mistakes_on_mnist(mnist):
    """The seed preset, 10 of its 50 epochs (bench/bench.py compares all 50)."""
    same_learning(mnist, PRESETS["seed"], epochs=10)
