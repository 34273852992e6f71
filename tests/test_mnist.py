"""Integration on the real MNIST (MNIST_DIR): the notebook's result and the fast preset's."""

from nets.config import PRESETS
from nets.training import train
from nets.two_layer_net import TwoLayerNet


def test_split_shapes(mnist):
    assert mnist.x_train.shape == (55000, 784) and mnist.x_val.shape == (5000, 784)
    assert mnist.x_test.shape == (10000, 784)
    assert mnist.y_train[:5].tolist() == [5, 0, 4, 1, 9]  # the first training digits of MNIST
    assert mnist.x_train.max() == 1.0 and mnist.x_train.min() == 0.0


def test_seed_preset_reproduces_the_notebook(mnist):
    """784-128-10, 0.01 randn, SGD 0.1, batch 1000, 50 sequential epochs: the notebook had 95.34%."""
    config = PRESETS["seed"]
    net = TwoLayerNet.from_config(config)
    history = list(train(net, mnist, config))
    assert len(history) == 50
    assert history[-1].train_loss < history[0].train_loss
    assert history[-1].test_acc >= 0.95, history[-1]


def test_fast_preset_reaches_97_5_within_5_epochs(mnist):
    config = PRESETS["fast"]
    assert config.epochs <= 5
    net = TwoLayerNet.from_config(config)
    history = list(train(net, mnist, config))
    assert history[-1].test_acc >= 0.975, history[-1]


def test_best_preset_reaches_98_4(mnist):
    config = PRESETS["best"]
    net = TwoLayerNet.from_config(config)
    history = list(train(net, mnist, config))
    assert history[-1].test_acc >= 0.984, history[-1]
