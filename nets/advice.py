"""Advice: rules over a run's history and health, each finding with its evidence and the
settings that would fix it. Evaluated after every epoch; the UI words the findings and
offers to apply the changes (the learning rate even into the running run).

Every rule needs enough epochs to judge; none fires on a run too young to tell.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from nets.config import LIMITS, TrainConfig
from nets.health import EpochHealth
from nets.training import EpochMetrics

LR_TOO_HIGH, LR_TOO_LOW = "lr_too_high", "lr_too_low"
OVERFITTING, UNDERFITTING = "overfitting", "underfitting"
DEAD_UNITS, SATURATED_UNITS = "dead_units", "saturated_units"
RULES = (LR_TOO_HIGH, LR_TOO_LOW, OVERFITTING, UNDERFITTING, DEAD_UNITS, SATURATED_UNITS)

LIVE_FIELDS = ("learning_rate",)  # what a running run can take from the next batch
RATE_FACTOR = 3.0  # a too-high or too-low rate is moved by this factor
OSCILLATION = 0.05  # a swing of the training loss by this share of its level counts
SLOW_FALL = 0.03  # below this relative fall per epoch a steady fall is slow ...
FLAT = 0.005  # ... and below this it is flat
HIGH_LOSS = 0.5  # a training loss above this is still high (chance is 2.30; a fair net is below 0.3)
RISE = 0.05  # the validation loss is rising once it is this share above its best
ABOVE_CHANCE = 1.05 * math.log(10)  # a training loss above this is worse than guessing uniformly
DEAD_SHARE = 0.25  # many dead (or saturated) units: at least this share of the hidden layer


@dataclass(frozen=True)
class Finding:
    """One piece of advice: a rule that fired, the numbers behind it, the fix."""

    rule: str  # one of RULES
    evidence: dict[str, float]  # named numbers the UI puts in words
    changes: dict[str, object] = field(default_factory=dict)  # TrainConfig field -> suggested value

    @property
    def live_changes(self) -> dict[str, object]:
        """The part of the fix a running run can take now."""
        return {k: v for k, v in self.changes.items() if k in LIVE_FIELDS}


def advise(
    config: TrainConfig,
    history: Sequence[EpochMetrics],
    health: Sequence[EpochHealth] = (),
    diverged: bool = False,
) -> list[Finding]:
    """The findings for a run so far, most urgent first."""
    checks = (
        lr_too_high(config, history, diverged),
        dead_units(config, health),
        saturated_units(config, health),
        overfitting(config, history),
        underfitting(config, history),
        lr_too_low(config, history),
    )
    found = [f for f in checks if f is not None]
    if any(f.rule == LR_TOO_HIGH for f in found):  # a rate too high and too low at once: trust the first
        found = [f for f in found if f.rule != LR_TOO_LOW]
    return found


def _rate(config: TrainConfig, factor: float) -> float:
    low, high = LIMITS["learning_rate"]
    return min(max(config.learning_rate * factor, low), high)


def lr_too_high(config: TrainConfig, history: Sequence[EpochMetrics], diverged: bool = False) -> Finding | None:
    """Diverged, or worse than chance, or the training loss rose two epochs running, or
    swung up and down."""
    lower = {"learning_rate": _rate(config, 1 / RATE_FACTOR)}
    if diverged:
        return Finding(LR_TOO_HIGH, {"diverged": 1.0, "learning_rate": config.learning_rate},
                       {"learning_rate": _rate(config, 1 / 10)})  # fmt: skip
    losses = [m.train_loss for m in history]
    if losses and losses[-1] > ABOVE_CHANCE:
        return Finding(LR_TOO_HIGH, {"above_chance": losses[-1], "learning_rate": config.learning_rate},
                       {"learning_rate": _rate(config, 1 / 10)})  # fmt: skip
    if len(losses) >= 3 and losses[-1] > losses[-2] > losses[-3]:
        return Finding(LR_TOO_HIGH, {"rising_from": losses[-3], "rising_to": losses[-1], "epochs": 2.0}, lower)
    if len(losses) >= 4:
        recent = losses[-4:]
        steps = [b - a for a, b in zip(recent, recent[1:], strict=False)]
        turns = sum(1 for a, b in zip(steps, steps[1:], strict=False) if a * b < 0)
        swing = max(abs(s) for s in steps) / (sum(recent) / len(recent))
        stuck = recent[-1] > 0.9 * recent[0]  # no real progress over the swings
        if turns >= 2 and swing > OSCILLATION and stuck:
            return Finding(LR_TOO_HIGH, {"swing": swing, "turns": float(turns)}, lower)
    return None


def _fall(history: Sequence[EpochMetrics], epochs: int = 3) -> float | None:
    """The training loss's mean relative fall per epoch over the last `epochs` epochs."""
    if len(history) < epochs:
        return None
    first, last = history[-epochs].train_loss, history[-1].train_loss
    return (first - last) / first / (epochs - 1) if first > 0 else None


def lr_too_low(config: TrainConfig, history: Sequence[EpochMetrics]) -> Finding | None:
    """A steady but slow fall of a loss that is still high."""
    fall = _fall(history)
    if fall is None or not FLAT <= fall < SLOW_FALL or history[-1].train_loss < HIGH_LOSS / 2:
        return None
    steady = all(b.train_loss < a.train_loss for a, b in zip(history[-3:], history[-2:], strict=False))
    if not steady:
        return None
    return Finding(LR_TOO_LOW, {"fall_per_epoch": fall, "train_loss": history[-1].train_loss},
                   {"learning_rate": _rate(config, RATE_FACTOR)})  # fmt: skip


def underfitting(config: TrainConfig, history: Sequence[EpochMetrics]) -> Finding | None:
    """Training and validation loss both high, and flat: the net cannot fit more."""
    fall = _fall(history)
    if fall is None or abs(fall) >= FLAT:
        return None
    last = history[-1]
    if last.train_loss < HIGH_LOSS or last.val_loss < HIGH_LOSS or last.train_loss > ABOVE_CHANCE:
        return None
    hidden = min(config.hidden_size * 2, int(LIMITS["hidden_size"][1]))
    epochs = min(config.epochs * 2, int(LIMITS["epochs"][1]))
    return Finding(UNDERFITTING, {"train_loss": last.train_loss, "val_loss": last.val_loss, "fall_per_epoch": fall},
                   {"hidden_size": hidden, "epochs": epochs})  # fmt: skip


def overfitting(config: TrainConfig, history: Sequence[EpochMetrics]) -> Finding | None:
    """The validation loss has risen from its best for two epochs or more while the
    training loss went on falling."""
    if len(history) < 3:
        return None
    best = min(range(len(history)), key=lambda e: history[e].val_loss)
    last = history[-1]
    if len(history) - 1 - best < 2 or last.val_loss < (1 + RISE) * history[best].val_loss:
        return None
    if last.train_loss >= history[best].train_loss:
        return None
    changes: dict[str, object] = {
        "weight_decay": min(config.weight_decay * 10, 1e-2) if config.weight_decay else 1e-4,
        "epochs": best + 1,
    }
    if not config.augment_shift:
        changes["augment_shift"] = 1
    evidence = {"best_epoch": float(best + 1), "best_val_loss": history[best].val_loss, "val_loss": last.val_loss,
                "best_train_loss": history[best].train_loss, "train_loss": last.train_loss,
                "gap": last.train_acc - last.val_acc}  # fmt: skip
    return Finding(OVERFITTING, evidence, changes)


def dead_units(config: TrainConfig, health: Sequence[EpochHealth]) -> Finding | None:
    """Many ReLU units that no validation digit switches on: they no longer learn."""
    if not health or health[-1].dead_share is None or health[-1].dead_share < DEAD_SHARE:
        return None
    changes: dict[str, object] = {"learning_rate": _rate(config, 1 / RATE_FACTOR)}
    if config.init != "he":
        changes["init"] = "he"
    return Finding(DEAD_UNITS, {"dead_share": health[-1].dead_share, "units": float(config.hidden_size)}, changes)


def saturated_units(config: TrainConfig, health: Sequence[EpochHealth]) -> Finding | None:
    """Many sigmoid/tanh units stuck at their flat ends: their gradient has all but vanished."""
    if not health or health[-1].saturated_share is None or health[-1].saturated_share < DEAD_SHARE:
        return None
    changes: dict[str, object] = {"learning_rate": _rate(config, 1 / RATE_FACTOR)}
    if config.init != "xavier":
        changes["init"] = "xavier"
    return Finding(SATURATED_UNITS, {"saturated_share": health[-1].saturated_share}, changes)
