"""Stop rules, chosen before a run starts: early stopping on the validation loss with a
patience (the best epoch's weights are kept), a time budget, and a target validation
accuracy. The training loop asks a StopWatch after each epoch (and, for the time budget,
after each batch) and ends the run the way a Stop would, naming the rule.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # the loop imports this module: only the annotation needs the record
    from nets.training import EpochMetrics

PATIENCE, TIME_BUDGET, TARGET_VAL_ACC = "patience", "time_budget", "target_val_acc"
RULES = (PATIENCE, TIME_BUDGET, TARGET_VAL_ACC)


@dataclass(frozen=True)
class StopRules:
    """Which rules may end a run early; None switches a rule off."""

    patience: int | None = None  # epochs without a new best validation loss before stopping
    time_budget: float | None = None  # seconds of training (batches and evaluations, no pauses)
    target_val_acc: float | None = None  # stop once the validation accuracy reaches this

    def __post_init__(self):
        if self.patience is not None and (isinstance(self.patience, bool) or not 1 <= self.patience <= 1000):
            raise ValueError(f"patience must be a whole number of epochs from 1 to 1000 (got {self.patience!r})")
        if self.time_budget is not None and not (math.isfinite(self.time_budget) and self.time_budget > 0):
            raise ValueError(f"time_budget must be a positive number of seconds (got {self.time_budget!r})")
        if self.target_val_acc is not None and not 0 < self.target_val_acc <= 1:
            raise ValueError(f"target_val_acc must be above 0 and at most 1 (got {self.target_val_acc!r})")

    @property
    def any(self) -> bool:
        return any(v is not None for v in asdict(self).values())

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class StopDecision:
    """Why a run was ended early."""

    rule: str  # patience | time_budget | target_val_acc
    epochs: int  # epochs trained when it stopped
    best_epoch: int | None = None  # patience: the 0-based epoch whose weights were kept

    def message(self, rules: StopRules) -> str:
        """One line for the run's record."""
        if self.rule == PATIENCE:
            return (
                f"stopped by early stopping: no better validation loss for {rules.patience} epochs "
                f"after epoch {self.best_epoch + 1}, the best"
            )
        if self.rule == TIME_BUDGET:
            return f"stopped by the time budget of {rules.time_budget:g} s after {self.epochs} epochs"
        return f"stopped on reaching the target validation accuracy of {rules.target_val_acc:.2%}"


class StopWatch:
    """Follows one run against its StopRules."""

    def __init__(self, rules: StopRules):
        self.rules = rules
        self.spent = 0.0  # seconds of training so far (finished epochs)
        self.best_loss = math.inf
        self.best_epoch: int | None = None
        self.best_params: dict[str, np.ndarray] | None = None
        self.best_state: dict[str, np.ndarray] | None = None

    def over_budget(self, epoch_seconds: float) -> bool:
        """Inside an epoch: has the budget run out, with `epoch_seconds` spent on this one?"""
        budget = self.rules.time_budget
        return budget is not None and self.spent + epoch_seconds >= budget

    def after_epoch(self, metrics: EpochMetrics, params, optimizer_state) -> StopDecision | None:
        """Take a finished epoch into account; a decision when a rule ends the run here.

        `params` and `optimizer_state` are called (for a copy) only when the epoch is a new
        best and a patience is set, so a run without one copies nothing.
        """
        self.spent += metrics.seconds + metrics.eval_seconds
        epochs = metrics.epoch + 1
        if self.rules.patience is not None:
            if metrics.val_loss < self.best_loss:
                self.best_loss, self.best_epoch = metrics.val_loss, metrics.epoch
                self.best_params, self.best_state = params(), optimizer_state()
            elif metrics.epoch - self.best_epoch >= self.rules.patience:
                return StopDecision(PATIENCE, epochs, self.best_epoch)
        if self.rules.target_val_acc is not None and metrics.val_acc >= self.rules.target_val_acc:
            return StopDecision(TARGET_VAL_ACC, epochs)
        if self.over_budget(0.0):
            return StopDecision(TIME_BUDGET, epochs)
        return None
