"""TwoLayerNet: input -> Affine -> activation -> Affine -> softmax, trained by backpropagation."""

from __future__ import annotations

import numpy as np

from nets.config import TrainConfig
from nets.functions import softmax
from nets.layers import ACTIVATION_LAYERS, Affine, SoftmaxWithCrossEntropy

PARAM_NAMES = ("W1", "b1", "W2", "b2")


def init_std(init: str, fan_in: int, init_std: float = 0.01) -> float:
    """The standard deviation of the initial weights of a layer with `fan_in` inputs.

    std: a fixed value (the notebook's 0.01); xavier: sqrt(1 / fan_in), which keeps the
    variance of sigmoid/tanh activations; he: sqrt(2 / fan_in), the same for ReLU.
    """
    if init == "std":
        return init_std
    if init == "xavier":
        return float(np.sqrt(1.0 / fan_in))
    if init == "he":
        return float(np.sqrt(2.0 / fan_in))
    raise ValueError(f"unknown init {init!r}")


class TwoLayerNet:
    """A 784-H-10 classifier. One params dict, {"W1", "b1", "W2", "b2"}, owns every weight.

    Shapes: W1 (D, H), b1 (H,), W2 (H, C), b2 (C,). The layers read that dict at call
    time, so `set_params` can replace arrays without leaving any layer behind.
    """

    def __init__(
        self,
        input_size: int = 784,
        hidden_size: int = 128,
        output_size: int = 10,
        activation: str = "relu",
        init: str = "std",
        init_std_value: float = 0.01,
        dtype: str | np.dtype = "float32",
        rng: np.random.Generator | int = 0,
    ):
        rng = np.random.default_rng(rng)
        self.dtype = np.dtype(dtype)
        self.activation = activation
        # Draw in float64, then cast: a float32 and a float64 net of the same seed start
        # from the same weights (up to rounding).
        std1 = init_std(init, input_size, init_std_value)
        std2 = init_std(init, hidden_size, init_std_value)
        W1 = std1 * rng.standard_normal((input_size, hidden_size))
        W2 = std2 * rng.standard_normal((hidden_size, output_size))
        self.params: dict[str, np.ndarray] = {
            "W1": W1.astype(self.dtype),
            "b1": np.zeros(hidden_size, dtype=self.dtype),
            "W2": W2.astype(self.dtype),
            "b2": np.zeros(output_size, dtype=self.dtype),
        }
        self.grads: dict[str, np.ndarray] = {}
        self.layers = [
            Affine(self.params, self.grads, "W1", "b1", input_grad=False),
            ACTIVATION_LAYERS[activation](),
            Affine(self.params, self.grads, "W2", "b2"),
        ]
        self.loss_layer = SoftmaxWithCrossEntropy()
        self._buffers: dict[str, np.ndarray] = {}  # the training step's intermediates, reused

    @classmethod
    def from_config(cls, config: TrainConfig, rng: np.random.Generator | int | None = None) -> TwoLayerNet:
        """The net a config describes, initialised from `rng` (default: the config's seed)."""
        return cls(
            hidden_size=config.hidden_size,
            activation=config.activation,
            init=config.init,
            init_std_value=config.init_std,
            dtype=config.dtype,
            rng=config.seed if rng is None else rng,
        )

    @property
    def input_size(self) -> int:
        return self.params["W1"].shape[0]

    @property
    def hidden_size(self) -> int:
        return self.params["W1"].shape[1]

    @property
    def output_size(self) -> int:
        return self.params["W2"].shape[1]

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Images (N, D) -> class scores (logits) (N, C)."""
        if x.dtype != self.dtype:
            x = x.astype(self.dtype)
        first, activation, second = self.layers
        hidden = first.forward(x)
        # The activation overwrites the first layer's output, a fresh array nothing else holds:
        # one pass less over the widest array, and no second one to allocate.
        return second.forward(activation.forward(hidden, out=hidden))

    def _buffer(self, name: str, rows: int, cols: int) -> np.ndarray:
        """A (rows, cols) array of this net's dtype, the same memory every training step."""
        buffer = self._buffers.get(name)
        if buffer is None or buffer.shape[0] < rows or buffer.shape[1] != cols:
            buffer = self._buffers[name] = np.empty((rows, cols), dtype=self.dtype)
        return buffer[:rows]

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        """Images (N, D) -> class probabilities (N, C)."""
        return softmax(self.predict(x))

    def loss(self, x: np.ndarray, labels: np.ndarray) -> float:
        """Mean cross-entropy of integer labels (N,)."""
        return self.loss_layer.forward(self.predict(x), labels)

    def accuracy(self, x: np.ndarray, labels: np.ndarray) -> float:
        return float((self.predict(x).argmax(axis=1) == labels).mean())

    def loss_and_gradient(self, x: np.ndarray, labels: np.ndarray) -> tuple[float, int, dict[str, np.ndarray]]:
        """One forward and one backward pass over a batch.

        Returns the mean loss, the number of correctly classified rows (from the same
        forward pass, so training accuracy costs nothing extra) and the gradients of
        the loss with respect to every parameter, keyed like `params`. The gradient
        arrays are reused by the next call: copy them to keep them.
        """
        if x.dtype != self.dtype:
            x = x.astype(self.dtype)
        n, first, activation, second = len(x), *self.layers
        # Every batch-sized intermediate goes into the net's own buffers (see nets/layers.py),
        # the activation and its gradient in place.
        hidden = first.forward(x, out=self._buffer("hidden", n, self.hidden_size))
        scores = second.forward(activation.forward(hidden, out=hidden), out=self._buffer("scores", n, self.output_size))
        correct = int((scores.argmax(axis=1) == labels).sum())
        loss = self.loss_layer.forward(scores, labels)
        dhidden = second.backward(self.loss_layer.backward(), out=self._buffer("dhidden", n, self.hidden_size))
        first.backward(activation.backward(dhidden, out=dhidden))
        return loss, correct, self.grads

    def gradient(self, x: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
        """The gradients of the loss, by backpropagation (copies, safe to keep)."""
        _, _, grads = self.loss_and_gradient(x, labels)
        return {name: grads[name].copy() for name in PARAM_NAMES}

    def copy_params(self) -> dict[str, np.ndarray]:
        return {name: array.copy() for name, array in self.params.items()}

    def set_params(self, params: dict[str, np.ndarray]) -> None:
        """Replace every weight with a copy of `params` (same names, shapes, dtype)."""
        for name in PARAM_NAMES:
            new = np.asarray(params[name])
            old = self.params[name]
            if new.shape != old.shape:
                raise ValueError(f"{name} has shape {new.shape}, the net needs {old.shape}")
            self.params[name] = new.astype(self.dtype, copy=True)
        self.grads.clear()

    def params_finite(self) -> bool:
        return all(np.isfinite(array).all() for array in self.params.values())

    def __repr__(self) -> str:
        inner = ", ".join(repr(layer) for layer in self.layers)
        return f"TwoLayerNet([{inner}, {self.loss_layer!r}], dtype={self.dtype.name})"
