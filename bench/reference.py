"""A baseline written the way the notebook wrote it, for the benchmark to measure against.

float64 weights (the data stays float32 as loaded, so every product first converts the
batch to float64), layers that each allocate fresh arrays, a separate
softmax and loss, ReLU by boolean indexing, and the first layer's input gradient computed
although nothing uses it. The learning is the same as the engine's `seed` preset: the same
initial weights, SGD, sequential batches, so the final accuracies must agree.

`epoch()` is the notebook's `learning()` loop: one forward and one backward pass per batch
(the forward inside the gradient), and the training error recorded once per epoch, after
the batch loop. That error is taken here as the loss of the epoch's last batch, one more
forward pass of one batch: the cheapest reading of "once per epoch", so the baseline is
never slower than the notebook's own loop. (deep-learning-from-scratch's loop, which
calls `loss()` again after every batch, did a second forward pass per batch; measuring
against it flattered the engine by a third.)
"""

from __future__ import annotations

import numpy as np


class Relu:
    def forward(self, x):
        self.mask = x <= 0
        out = x.copy()
        out[self.mask] = 0
        return out

    def backward(self, dout):
        dout = dout.copy()
        dout[self.mask] = 0
        return dout


class Affine:
    def __init__(self, W, b):
        self.W, self.b = W, b

    def forward(self, x):
        self.x = x
        return np.dot(x, self.W) + self.b

    def backward(self, dout):
        self.dW = np.dot(self.x.T, dout)
        self.db = np.sum(dout, axis=0)
        return np.dot(dout, self.W.T)  # computed for every layer, the first one included


class SoftmaxWithLoss:
    def forward(self, x, t):
        self.t = t
        x = x - np.max(x, axis=1, keepdims=True)
        self.y = np.exp(x) / np.sum(np.exp(x), axis=1, keepdims=True)
        n = x.shape[0]
        return -np.sum(np.log(self.y[np.arange(n), t] + 1e-7)) / n

    def backward(self):
        n = self.t.shape[0]
        dx = self.y.copy()
        dx[np.arange(n), self.t] -= 1
        return dx / n


class NotebookNet:
    """784-128-10 ReLU in float64, started from the given (engine-made) weights."""

    def __init__(self, params: dict[str, np.ndarray]):
        self.params = {k: v.astype(np.float64) for k, v in params.items()}
        p = self.params
        self.layers = [Affine(p["W1"], p["b1"]), Relu(), Affine(p["W2"], p["b2"])]
        self.last = SoftmaxWithLoss()

    def predict(self, x):
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def step(self, x, t, lr):
        loss = self.last.forward(self.predict(x), t)
        dout = self.last.backward()
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
        a1, a2 = self.layers[0], self.layers[2]
        for key, grad in (("W1", a1.dW), ("b1", a1.db), ("W2", a2.dW), ("b2", a2.db)):
            self.params[key] -= lr * grad
        return loss

    def loss(self, x, t):
        return self.last.forward(self.predict(x), t)

    def epoch(self, x, t, batch_size, lr) -> float:
        """One epoch of sequential batches; returns the training error recorded after it."""
        for start in range(0, len(x), batch_size):
            xb, tb = x[start : start + batch_size], t[start : start + batch_size]
            self.step(xb, tb, lr)
        return self.loss(xb, tb)

    def accuracy(self, x, t):
        return float((self.predict(x).argmax(axis=1) == t).mean())
