"""The layers of the net: Affine, Relu, Sigmoid, Tanh and SoftmaxWithCrossEntropy.

Every layer has `forward(x)` and `backward(dout)`. Forward caches only what backward
needs; backward returns new arrays and never writes into `dout`. Affine does not own its
weights: it reads them from the net's one params dict at call time, so replacing an array
in that dict (loading a checkpoint, say) can never leave a layer with a stale copy.

Both also take `out=`, an array to write the result into (as NumPy's ufuncs do), which may
be the input itself: the net's training step passes buffers it owns, so that a step
allocates nothing batch-sized. A fresh array of a few hundred kB is not free: the C
allocator hands such blocks back to the kernel and page-faults them in again, which cost
as much as the ReLU's backward itself here.
"""

from __future__ import annotations

import numpy as np

from nets.functions import cross_entropy, softmax


class Affine:
    """x (N, D_in) -> x @ W + b (N, D_out).

    `params` and `grads` are the net's dicts; `weight` and `bias` name the entries this
    layer uses ("W1", "b1"). With `input_grad=False` backward skips dx (the first layer's
    input gradient is never used in training: computing it would cost a third matmul).
    """

    def __init__(
        self,
        params: dict[str, np.ndarray],
        grads: dict[str, np.ndarray],
        weight: str,
        bias: str,
        input_grad: bool = True,
    ):
        self._net_params = params
        self._net_grads = grads
        self.weight, self.bias = weight, bias
        self.input_grad = input_grad
        self.x: np.ndarray | None = None

    @property
    def params(self) -> dict[str, np.ndarray]:
        """This layer's weights, keyed "W" and "b" (read from the net's dict now)."""
        return {"W": self._net_params[self.weight], "b": self._net_params[self.bias]}

    @property
    def grads(self) -> dict[str, np.ndarray]:
        """The gradients of the last backward, keyed "W" and "b"."""
        return {"W": self._net_grads[self.weight], "b": self._net_grads[self.bias]}

    def forward(self, x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        self.x = x
        out = np.matmul(x, self._net_params[self.weight], out=out)  # (N, D_out)
        out += self._net_params[self.bias]
        return out

    def backward(self, dout: np.ndarray, out: np.ndarray | None = None) -> np.ndarray | None:
        W = self._net_params[self.weight]
        self._net_grads[self.weight] = _matmul_into(self._net_grads.get(self.weight), self.x.T, dout)
        self._net_grads[self.bias] = dout.sum(axis=0)  # (D_out,)
        if not self.input_grad:
            return None
        return np.matmul(dout, W.T, out=out)  # (N, D_in)

    def __repr__(self) -> str:
        D_in, D_out = self._net_params[self.weight].shape
        return f"Affine({D_in} -> {D_out})"


def _matmul_into(buffer: np.ndarray | None, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a @ b, written into `buffer` when it already has the right shape and dtype.

    Gradients have the same shape every batch; reusing their memory saves an allocation
    and the page faults of a fresh 0.4 MB array per batch.
    """
    shape = (a.shape[0], b.shape[1])
    dtype = np.result_type(a, b)
    if buffer is None or buffer.shape != shape or buffer.dtype != dtype:
        return a @ b
    return np.matmul(a, b, out=buffer)


class Relu:
    """x (N, D) -> max(x, 0) (N, D); the gradient passes where the output is positive."""

    def __init__(self):
        self.out: np.ndarray | None = None

    def forward(self, x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        # Against a row of zeros rather than the scalar 0: NumPy 2.4 runs maximum with a
        # scalar operand in a plain loop (40 µs for 1000 x 128 float32 here), with a
        # broadcast row in its SIMD loop (15 µs). Same result.
        self.out = np.maximum(x, np.zeros(x.shape[-1], dtype=x.dtype), out=out)
        return self.out

    def backward(self, dout: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        # Multiplying by the mask (no boolean indexing; into dout only when asked).
        return np.multiply(dout, self.out > 0, out=out)

    def __repr__(self) -> str:
        return "Relu()"


class Sigmoid:
    """x (N, D) -> 1 / (1 + exp(-x)) (N, D), written with tanh so it never overflows."""

    def __init__(self):
        self.out: np.ndarray | None = None

    def forward(self, x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        out = np.multiply(x, x.dtype.type(0.5), out=out)
        np.tanh(out, out=out)
        out += 1
        out *= 0.5
        self.out = out
        return out

    def backward(self, dout: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        out = np.multiply(dout, self.out, out=out)
        out *= 1 - self.out  # sigma' = sigma (1 - sigma)
        return out

    def __repr__(self) -> str:
        return "Sigmoid()"


class Tanh:
    """x (N, D) -> tanh(x) (N, D)."""

    def __init__(self):
        self.out: np.ndarray | None = None

    def forward(self, x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        self.out = np.tanh(x, out=out)
        return self.out

    def backward(self, dout: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        return np.multiply(dout, 1 - self.out * self.out, out=out)  # tanh' = 1 - tanh^2

    def __repr__(self) -> str:
        return "Tanh()"


ACTIVATION_LAYERS = {"relu": Relu, "sigmoid": Sigmoid, "tanh": Tanh}


class SoftmaxWithCrossEntropy:
    """Scores (N, C) and integer labels (N,) -> mean cross-entropy (a float).

    Softmax and the loss are fused: the gradient with respect to the scores is simply
    (probs - one_hot(labels)) / N, which is both cheaper and more stable than chaining the
    two derivatives. The row max is subtracted before exp; probabilities are clipped at the
    dtype's eps inside the log.
    """

    def __init__(self):
        self.probs: np.ndarray | None = None
        self.labels: np.ndarray | None = None

    def forward(self, scores: np.ndarray, labels: np.ndarray) -> float:
        self.probs, self.labels = softmax(scores), labels
        return cross_entropy(self.probs, labels)

    def backward(self, dout: float = 1.0) -> np.ndarray:
        n = self.labels.shape[0]
        dscores = self.probs.copy()  # (N, C); the cache stays intact
        dscores[np.arange(n), self.labels] -= 1
        dscores *= dout / n
        return dscores

    def __repr__(self) -> str:
        return "SoftmaxWithCrossEntropy()"
