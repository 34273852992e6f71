"""Optimisers: SGD (the notebook's), Momentum and Adam, with optional L2 weight decay.

Each `update(params, grads)` changes the arrays of `params` in place, so the net's params
dict keeps the same arrays (and any snapshot taken with `.copy()` stays separate).
`learning_rate` is a plain attribute: the training loop sets it each epoch for a schedule.

Updates work in place, through one scratch array per weight array that the optimiser
keeps (not part of its state): every fresh temporary of a 784x512 array costs its
allocation and page faults, and Adam's expressions made eight of them per weight array per
batch. The `fast` preset's epoch took 3-5% longer that way (256 and 512 hidden units, AMD
EPYC). With weight decay, the decayed gradient is still one fresh array per weight array.
"""

from __future__ import annotations

import numpy as np


class Optimizer:
    def __init__(self, learning_rate: float, weight_decay: float = 0.0):
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self._scratch: dict[str, np.ndarray] = {}

    def _scratch_for(self, name: str, param: np.ndarray) -> np.ndarray:
        """An array like `param` for intermediate results, the same one every update."""
        scratch = self._scratch.get(name)
        if scratch is None or scratch.shape != param.shape or scratch.dtype != param.dtype:
            scratch = self._scratch[name] = np.empty_like(param)
        return scratch

    def _decayed(self, name: str, param: np.ndarray, grad: np.ndarray) -> np.ndarray:
        """The gradient plus the L2 term weight_decay * W, for weights only (not biases)."""
        if self.weight_decay and name.startswith("W"):
            return grad + self.weight_decay * param
        return grad

    def update(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        raise NotImplementedError

    def state(self) -> dict[str, np.ndarray]:
        """What the next update depends on besides the weights (saved to continue a run later)."""
        return {}

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        """Take back what `state()` returned (arrays copied: the caller's stay its own)."""
        if state:
            raise ValueError(f"{type(self).__name__} keeps no state (got {sorted(state)[0]!r})")


class SGD(Optimizer):
    """W <- W - lr * dW."""

    def update(self, params, grads):
        for name, param in params.items():
            step = np.multiply(
                self._decayed(name, param, grads[name]), param.dtype.type(self.learning_rate),
                out=self._scratch_for(name, param),
            )  # fmt: skip
            param -= step

    def __repr__(self) -> str:
        return f"SGD(lr={self.learning_rate:g})"


class Momentum(Optimizer):
    """v <- mu * v - lr * dW;  W <- W + v."""

    def __init__(self, learning_rate: float, momentum: float = 0.9, weight_decay: float = 0.0):
        super().__init__(learning_rate, weight_decay)
        self.momentum = momentum
        self.velocity: dict[str, np.ndarray] = {}

    def update(self, params, grads):
        for name, param in params.items():
            grad = self._decayed(name, param, grads[name])
            v = self.velocity.get(name)
            if v is None:
                v = self.velocity[name] = np.zeros_like(param)
            v *= param.dtype.type(self.momentum)
            v -= np.multiply(grad, param.dtype.type(self.learning_rate), out=self._scratch_for(name, param))
            param += v

    def state(self):
        return {f"velocity_{name}": v.copy() for name, v in self.velocity.items()}

    def load_state(self, state):
        self.velocity = {key.removeprefix("velocity_"): np.array(v) for key, v in state.items()}

    def __repr__(self) -> str:
        return f"Momentum(lr={self.learning_rate:g}, momentum={self.momentum:g})"


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015) with bias-corrected first and second moments."""

    def __init__(
        self,
        learning_rate: float,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ):
        super().__init__(learning_rate, weight_decay)
        self.beta1, self.beta2, self.eps = beta1, beta2, eps
        self.step = 0
        self.m: dict[str, np.ndarray] = {}
        self.v: dict[str, np.ndarray] = {}

    def update(self, params, grads):
        self.step += 1
        t = self.step
        # The bias corrections folded into the step size (Kingma & Ba, section 2).
        lr_t = self.learning_rate * np.sqrt(1 - self.beta2**t) / (1 - self.beta1**t)
        for name, param in params.items():
            grad = self._decayed(name, param, grads[name])
            if name not in self.m:
                self.m[name] = np.zeros_like(param)
                self.v[name] = np.zeros_like(param)
            m, v, work, real = self.m[name], self.v[name], self._scratch_for(name, param), param.dtype.type
            np.subtract(grad, m, out=work)  # m <- b1 m + (1 - b1) g, as m + (1 - b1)(g - m)
            work *= real(1 - self.beta1)
            m += work
            np.multiply(grad, grad, out=work)  # v <- b2 v + (1 - b2) g^2
            work -= v
            work *= real(1 - self.beta2)
            v += work
            np.sqrt(v, out=work)  # W <- W - lr_t m / (sqrt(v) + eps)
            work += real(self.eps)
            np.divide(m, work, out=work)
            work *= real(lr_t)
            param -= work

    def state(self):
        if not self.step:
            return {}
        return {
            "step": np.array(self.step, dtype=np.int64),
            **{f"m_{name}": m.copy() for name, m in self.m.items()},
            **{f"v_{name}": v.copy() for name, v in self.v.items()},
        }

    def load_state(self, state):
        self.step = int(state.get("step", 0))
        self.m = {k.removeprefix("m_"): np.array(v) for k, v in state.items() if k.startswith("m_")}
        self.v = {k.removeprefix("v_"): np.array(v) for k, v in state.items() if k.startswith("v_")}

    def __repr__(self) -> str:
        return f"Adam(lr={self.learning_rate:g})"


def state_names(optimizer: str, param_names) -> set[str]:
    """The names `state()` of that optimiser can return, for checking a saved state."""
    if optimizer == "momentum":
        return {f"velocity_{p}" for p in param_names}
    if optimizer == "adam":
        return {"step", *(f"m_{p}" for p in param_names), *(f"v_{p}" for p in param_names)}
    return set()


def make_optimizer(name: str, learning_rate: float, momentum: float = 0.9, weight_decay: float = 0.0) -> Optimizer:
    """The optimiser called `name` ("sgd", "momentum" or "adam")."""
    if name == "sgd":
        return SGD(learning_rate, weight_decay)
    if name == "momentum":
        return Momentum(learning_rate, momentum, weight_decay)
    if name == "adam":
        return Adam(learning_rate, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {name!r}")
