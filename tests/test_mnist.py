"""Integration on the real MNIST (MNIST_DIR): the notebook's result and the fast preset's."""

import numpy as np
import pytest
from conftest import ROOT
from PIL import Image

from nets.checkpoint import load_model
from nets.config import PRESETS
from nets.evaluation import evaluate
from nets.preprocess import preprocess
from nets.training import train
from nets.two_layer_net import TwoLayerNet

pytestmark = pytest.mark.slow  # trains on all 55,000 digits: minutes, not seconds


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


PRETRAINED = ROOT / "models" / "pretrained.npz"


def test_the_shipped_pretrained_model(mnist):
    """The `record` preset's epoch chosen by validation accuracy, its weights in float16: made by
    `python bench/record_run.py --save models/pretrained.npz --half` (about 10 minutes)."""
    loaded = load_model(PRETRAINED)
    assert PRETRAINED.stat().st_size < 1_400_000
    assert loaded.config.hidden_size == 800 and loaded.config.augment_elastic > 0
    result = evaluate(loaded.net, mnist.x_test, mnist.y_test)
    assert result.accuracy >= 0.99  # 99.27% where it was made; another BLAS may round a digit or two apart
    assert abs(result.accuracy - loaded.meta["test_acc"]) <= 2 / len(mnist.y_test)


def test_the_canvas_path_costs_at_most_one_point(mnist):
    """Test digits upscaled to 280x280 RGBA, as the canvas delivers a drawing, then preprocessed."""
    net = load_model(PRETRAINED).net
    n = 3000
    inputs = []
    for image in mnist.x_test[:n]:
        big = Image.fromarray((image.reshape(28, 28) * 255).astype(np.uint8)).resize((280, 280), Image.BILINEAR)
        rgba = np.dstack([np.asarray(big)] * 3 + [np.full((280, 280), 255, np.uint8)])
        inputs.append(preprocess(rgba).x)
    direct = evaluate(net, mnist.x_test[:n], mnist.y_test[:n]).accuracy
    through_canvas = evaluate(net, np.stack(inputs), mnist.y_test[:n]).accuracy
    assert direct - through_canvas <= 0.01, (direct, through_canvas)
