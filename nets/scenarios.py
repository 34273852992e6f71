"""Guided scenarios: a pinned baseline, one change in a variant, and what the two runs measured.

Each scenario is a pair of configs that differ in one idea (the learning rate, the hidden
units, ...), trained on a subset of the digits where that keeps both runs under about 20 s
here. `takeaway()` reads the two runs' records and returns a Takeaway: whether the scenario's
claim held this time, and the measured numbers behind it, under stable names. The sentences
are the UI's; nothing here knows what a claim says in words.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from nets.config import PRESETS, TrainConfig
from nets.data import Mnist
from nets.training import EpochMetrics, TrainingDiverged, train
from nets.two_layer_net import TwoLayerNet

FINISHED, DIVERGED = "finished", "diverged"
SLOW_TARGET = 0.9  # the validation accuracy whose epoch measures "slow" (sigmoid with tiny weights)
LEARNED_WELL = 0.9  # the validation accuracy a baseline that learns reaches (the diverging scenario's)
OVERFIT_RISE = 0.02  # how far a validation loss must climb back from its best to count as overfitting


@dataclass(frozen=True)
class Outcome:
    """How one run of a scenario ended: its epochs, in order, and its status (finished, diverged, ...)."""

    history: tuple[EpochMetrics, ...]
    status: str

    @property
    def last(self) -> EpochMetrics | None:
        return self.history[-1] if self.history else None

    @property
    def ended(self) -> bool:
        """Finished its epochs or diverged: a takeaway can be read from it (a stopped run: no)."""
        return self.status in (FINISHED, DIVERGED)


@dataclass(frozen=True)
class Takeaway:
    """What a scenario's two runs showed: whether its claim held, and the numbers that decided it.

    `figures` maps stable names (the same for every run of a scenario) to measured values;
    a value is None when the run never got there (the epoch a diverged run reached 90%).
    """

    claim_holds: bool
    figures: dict[str, float | int | bool | None] = field(default_factory=dict)


@dataclass(frozen=True)
class Scenario:
    """A baseline config, a variant that changes one idea, and the judge of their outcomes."""

    key: str  # stable id: URLs, widget keys and the UI's words are keyed by it
    baseline: TrainConfig
    variant: TrainConfig
    judge: Callable[[Scenario, Outcome, Outcome], Takeaway]  # (scenario, baseline, variant)

    def changes(self) -> dict[str, tuple]:
        """The settings the variant changes: field -> (baseline value, variant value)."""
        base, var = self.baseline.to_dict(), self.variant.to_dict()
        return {name: (base[name], var[name]) for name in base if base[name] != var[name]}


def _final(o: Outcome, name: str):
    return getattr(o.last, name) if o.last is not None else None


def _epochs_to(o: Outcome, accuracy: float) -> int | None:
    """The first epoch (1-based) whose validation accuracy reached `accuracy`, or None."""
    return next((m.epoch + 1 for m in o.history if m.val_acc >= accuracy), None)


def _seconds(o: Outcome) -> float:
    return sum(m.seconds for m in o.history)


def _notebook_vs_modern(s: Scenario, base: Outcome, var: Outcome) -> Takeaway:
    """The modern recipe ends more accurate than the notebook's, in fewer epochs."""
    beat = next((m.epoch + 1 for m in var.history if m.test_acc > _final(base, "test_acc")), None)
    figures = {
        "baseline_test_acc": _final(base, "test_acc"),
        "variant_test_acc": _final(var, "test_acc"),
        "baseline_errors": _final(base, "test_errors"),
        "variant_errors": _final(var, "test_errors"),
        "baseline_epochs": len(base.history),
        "variant_epochs": len(var.history),
        "baseline_seconds": _seconds(base),
        "variant_seconds": _seconds(var),
        "variant_epochs_to_beat": beat,  # the modern recipe's first epoch past the notebook's final accuracy
    }
    holds = var.status == FINISHED and beat is not None and len(var.history) < len(base.history)
    return Takeaway(holds, figures)


def _high_rate_diverges(s: Scenario, base: Outcome, var: Outcome) -> Takeaway:
    """The large rate diverges (the loop stops it) while the baseline's rate learns."""
    figures = {
        "baseline_rate": s.baseline.learning_rate,
        "variant_rate": s.variant.learning_rate,
        "baseline_test_acc": _final(base, "test_acc"),
        "variant_diverged": var.status == DIVERGED,
        "variant_epochs_done": len(var.history),  # epochs finished before it diverged
        "variant_best_val_acc": max((m.val_acc for m in var.history), default=None),
    }
    holds = var.status == DIVERGED and base.status == FINISHED and _final(base, "val_acc") >= LEARNED_WELL
    return Takeaway(holds, figures)


def _small_net_underfits(s: Scenario, base: Outcome, var: Outcome) -> Takeaway:
    """The small net fits even its training digits worse, and so the test digits too."""
    figures = {
        "baseline_train_acc": _final(base, "train_acc"),
        "variant_train_acc": _final(var, "train_acc"),
        "baseline_test_acc": _final(base, "test_acc"),
        "variant_test_acc": _final(var, "test_acc"),
        "baseline_train_loss": _final(base, "train_loss"),
        "variant_train_loss": _final(var, "train_loss"),
    }
    holds = (
        var.status == FINISHED
        and figures["variant_train_acc"] < figures["baseline_train_acc"] - 0.01
        and figures["variant_test_acc"] < figures["baseline_test_acc"]
    )
    return Takeaway(holds, figures)


def _no_decay_overfits(s: Scenario, base: Outcome, var: Outcome) -> Takeaway:
    """Without weight decay the net learns its training digits by heart: its validation loss
    climbs back from its best epoch much further than with decay, and it reads fewer
    validation digits right."""

    def rise(o: Outcome) -> float | None:
        return o.last.val_loss - min(m.val_loss for m in o.history) if o.history else None

    figures = {
        "train_samples": s.variant.train_samples,
        "baseline_train_acc": _final(base, "train_acc"),
        "variant_train_acc": _final(var, "train_acc"),
        "baseline_val_acc": _final(base, "val_acc"),
        "variant_val_acc": _final(var, "val_acc"),
        "baseline_val_loss_rise": rise(base),
        "variant_val_loss_rise": rise(var),
        "variant_best_val_loss_epoch": min(var.history, key=lambda m: m.val_loss).epoch + 1 if var.history else None,
        "baseline_test_acc": _final(base, "test_acc"),
        "variant_test_acc": _final(var, "test_acc"),
    }
    holds = (
        var.status == FINISHED
        and figures["variant_train_acc"] >= 0.99
        and figures["variant_val_loss_rise"] > max(3 * figures["baseline_val_loss_rise"], OVERFIT_RISE)
        and figures["variant_val_acc"] < figures["baseline_val_acc"]
    )
    return Takeaway(holds, figures)


def _tiny_sigmoid_slow(s: Scenario, base: Outcome, var: Outcome) -> Takeaway:
    """Sigmoid units with tiny initial weights sit on a plateau: they need many more epochs
    to reach 90% validation accuracy (or never do in this run)."""
    figures = {
        "target": SLOW_TARGET,
        "baseline_epochs_to_target": _epochs_to(base, SLOW_TARGET),
        "variant_epochs_to_target": _epochs_to(var, SLOW_TARGET),
        "baseline_first_val_acc": base.history[0].val_acc if base.history else None,
        "variant_first_val_acc": var.history[0].val_acc if var.history else None,
        "baseline_test_acc": _final(base, "test_acc"),
        "variant_test_acc": _final(var, "test_acc"),
        "epochs": len(var.history),
    }
    b, v = figures["baseline_epochs_to_target"], figures["variant_epochs_to_target"]
    holds = var.status == FINISHED and b is not None and (v is None or v >= b + 2)
    return Takeaway(holds, figures)


def _shift_helps(s: Scenario, base: Outcome, var: Outcome) -> Takeaway:
    """Training digits shifted by a pixel make fewer test errors than the same digits unshifted."""
    figures = {
        "baseline_test_acc": _final(base, "test_acc"),
        "variant_test_acc": _final(var, "test_acc"),
        "baseline_errors": _final(base, "test_errors"),
        "variant_errors": _final(var, "test_errors"),
        "baseline_train_acc": _final(base, "train_acc"),
        "variant_train_acc": _final(var, "train_acc"),
    }
    holds = var.status == FINISHED and figures["variant_errors"] < figures["baseline_errors"]
    return Takeaway(holds, figures)


# A plain recipe the scenarios change one idea of: SGD at a constant rate, shuffled batches.
_SGD = TrainConfig(optimizer="sgd", learning_rate=0.1, lr_schedule="constant", hidden_size=128, epochs=5)
_MOMENTUM = TrainConfig(optimizer="momentum", learning_rate=0.05, lr_schedule="cosine", batch_size=128)
_OVERFIT = _MOMENTUM.replace(lr_schedule="constant", hidden_size=128, epochs=100, train_samples=1_000)

SCENARIOS: dict[str, Scenario] = {
    s.key: s
    for s in (
        Scenario(  # half the digits: both runs in about 10 s here instead of 30 s
            "notebook_vs_modern",
            PRESETS["seed"].replace(train_samples=27_500),
            PRESETS["fast"].replace(train_samples=27_500),
            _notebook_vs_modern,
        ),
        Scenario(
            "high_rate_diverges",
            _SGD.replace(train_samples=10_000),
            _SGD.replace(train_samples=10_000, learning_rate=5.0),
            _high_rate_diverges,
        ),
        Scenario("small_net_underfits", PRESETS["fast"], PRESETS["fast"].replace(hidden_size=16), _small_net_underfits),
        Scenario(  # a constant rate, so that the net without decay goes on learning its digits by heart
            "no_decay_overfits",
            _OVERFIT.replace(weight_decay=1e-2),
            _OVERFIT.replace(weight_decay=0.0),
            _no_decay_overfits,
        ),
        Scenario(
            "tiny_sigmoid_slow",
            _SGD.replace(train_samples=10_000, epochs=10, activation="sigmoid", init="xavier"),
            _SGD.replace(train_samples=10_000, epochs=10, activation="sigmoid", init="std", init_std=0.01),
            _tiny_sigmoid_slow,
        ),
        Scenario(
            "shift_helps",
            _MOMENTUM.replace(train_samples=10_000, epochs=15, hidden_size=256),
            _MOMENTUM.replace(train_samples=10_000, epochs=15, hidden_size=256, augment_shift=1),
            _shift_helps,
        ),
    )
}


def takeaway(scenario: Scenario, baseline: Outcome, variant: Outcome) -> Takeaway | None:
    """What the two runs showed, or None while either has not ended (or was stopped, or the
    baseline did not finish: then there is nothing to compare against)."""
    if not variant.ended or baseline.status != FINISHED or not baseline.history:
        return None
    return scenario.judge(scenario, baseline, variant)


def run(config: TrainConfig, data: Mnist) -> Outcome:
    """Train one config headless, to its end or its divergence (tests, the command line)."""
    history: list[EpochMetrics] = []
    try:
        for metrics in train(TwoLayerNet.from_config(config), data, config):
            history.append(metrics)
    except TrainingDiverged:
        return Outcome(tuple(history), DIVERGED)
    return Outcome(tuple(history), FINISHED)


def newest_run(records: Iterable, config: TrainConfig, statuses: Iterable[str]):
    """The newest run record (from a newest-first listing) with exactly this config and one of
    these statuses, else None: the same config on the same data gives the same numbers, so a
    finished baseline is trained once per store."""
    wanted = tuple(statuses)
    return next((r for r in records if r.status in wanted and r.config == config), None)
