"""Guided scenarios: each judge on constructed runs (it holds, and it does not), the takeaway's
waiting rules, and each scenario end to end on the real MNIST, where its claim must hold."""

from __future__ import annotations

import time

import pytest

from nets.config import LIMITS, TrainConfig
from nets.scenarios import DIVERGED, FINISHED, SCENARIOS, Outcome, newest_run, run, takeaway
from nets.training import EpochMetrics


def metrics(epoch: int, **values) -> EpochMetrics:
    base = dict(epochs=10, train_loss=0.1, train_acc=0.97, val_loss=0.1, val_acc=0.96, test_loss=0.1, test_acc=0.96,
                test_errors=400, learning_rate=0.1, seconds=0.5, eval_seconds=0.01, samples_per_sec=1e4)  # fmt: skip
    return EpochMetrics(epoch=epoch, **{**base, **values})


def outcome(rows: list[dict], status: str = FINISHED) -> Outcome:
    return Outcome(tuple(metrics(e, **row) for e, row in enumerate(rows)), status)


def flat(n: int, **values) -> list[dict]:
    return [dict(values) for _ in range(n)]


GOOD = outcome(flat(5, val_acc=0.97, test_acc=0.97))

# scenario -> (baseline, variant that shows the claim, variant that does not)
CASES = {
    "notebook_vs_modern": (
        outcome(flat(50, test_acc=0.953, test_errors=470)),
        outcome(flat(5, test_acc=0.98, test_errors=200)),
        outcome(flat(5, test_acc=0.95, test_errors=500)),
    ),
    "high_rate_diverges": (GOOD, outcome([], DIVERGED), outcome(flat(5, val_acc=0.9))),
    "small_net_underfits": (
        outcome(flat(5, train_acc=0.995, test_acc=0.98)),
        outcome(flat(5, train_acc=0.95, test_acc=0.95)),
        outcome(flat(5, train_acc=0.99, test_acc=0.975)),
    ),
    "no_decay_overfits": (
        outcome([dict(val_loss=v, val_acc=0.88, train_acc=0.99) for v in (0.6, 0.4, 0.38, 0.39)]),
        outcome([dict(val_loss=v, val_acc=0.86, train_acc=1.0) for v in (0.6, 0.4, 0.45, 0.5)]),
        outcome([dict(val_loss=v, val_acc=0.86, train_acc=1.0) for v in (0.6, 0.4, 0.38, 0.385)]),
    ),
    "tiny_sigmoid_slow": (
        outcome([dict(val_acc=v) for v in (0.85, 0.91, 0.93, 0.94, 0.95)]),
        outcome([dict(val_acc=v) for v in (0.11, 0.2, 0.6, 0.85, 0.89)]),
        outcome([dict(val_acc=v) for v in (0.84, 0.9, 0.93, 0.94, 0.95)]),
    ),
    "shift_helps": (
        outcome(flat(15, test_errors=330, test_acc=0.967)),
        outcome(flat(15, test_errors=290, test_acc=0.971)),
        outcome(flat(15, test_errors=335, test_acc=0.9665)),
    ),
}


def test_every_scenario_has_cases():
    assert set(CASES) == set(SCENARIOS)


@pytest.mark.parametrize("key", list(SCENARIOS))
def test_each_judge_says_when_its_claim_holds_and_when_not(key):
    baseline, shows, does_not = CASES[key]
    scenario = SCENARIOS[key]
    held = takeaway(scenario, baseline, shows)
    assert held is not None and held.claim_holds, held
    missed = takeaway(scenario, baseline, does_not)
    assert missed is not None and not missed.claim_holds, missed
    assert set(held.figures) == set(missed.figures)  # stable names, whatever the outcome


def test_the_figures_are_the_runs_numbers():
    found = takeaway(SCENARIOS["shift_helps"], *CASES["shift_helps"][:2]).figures
    assert (found["baseline_errors"], found["variant_errors"]) == (330, 290)
    slow = takeaway(SCENARIOS["tiny_sigmoid_slow"], *CASES["tiny_sigmoid_slow"][:2]).figures
    assert (slow["baseline_epochs_to_target"], slow["variant_epochs_to_target"]) == (2, None)


def test_no_takeaway_until_both_runs_end_and_the_baseline_finished():
    scenario = SCENARIOS["shift_helps"]
    baseline, variant, _ = CASES["shift_helps"]
    assert takeaway(scenario, baseline, Outcome(variant.history[:3], "running")) is None
    assert takeaway(scenario, baseline, Outcome(variant.history[:3], "stopped")) is None
    assert takeaway(scenario, Outcome(baseline.history[:3], "stopped"), variant) is None
    assert takeaway(scenario, Outcome((), DIVERGED), variant) is None
    # a variant that diverged where it should not: a takeaway, and the claim does not hold
    assert not takeaway(scenario, baseline, Outcome((), DIVERGED)).claim_holds


def test_each_scenario_changes_what_its_story_says_and_fits_a_subset():
    changed = {key: set(s.changes()) for key, s in SCENARIOS.items()}
    assert changed["high_rate_diverges"] == {"learning_rate"}
    assert changed["small_net_underfits"] == {"hidden_size"}
    assert changed["no_decay_overfits"] == {"weight_decay"}
    assert changed["tiny_sigmoid_slow"] <= {"init", "init_std"}
    assert changed["shift_helps"] == {"augment_shift"}
    assert SCENARIOS["no_decay_overfits"].variant.train_samples == 1_000
    for s in SCENARIOS.values():
        assert s.baseline.train_samples == s.variant.train_samples  # the same digits on both sides
        assert (s.variant.train_samples or 55_000) <= LIMITS["train_samples"][1]


def test_newest_run_matches_the_whole_config_and_the_status():
    class Record:
        def __init__(self, run_id, config, status):
            self.run_id, self.config, self.status = run_id, config, status

    config = SCENARIOS["shift_helps"].baseline
    records = [Record(3, config, "running"), Record(2, config.replace(seed=1), FINISHED), Record(1, config, FINISHED)]
    assert newest_run(records, config, (FINISHED,)).run_id == 1
    assert newest_run(records, config, ("running", FINISHED)).run_id == 3
    assert newest_run(records, TrainConfig(), (FINISHED,)) is None


_OUTCOMES: dict[TrainConfig, Outcome] = {}  # one run per config across the cases (two scenarios share the fast preset)


def trained(config: TrainConfig, data) -> Outcome:
    if config not in _OUTCOMES:
        _OUTCOMES[config] = run(config, data)
    return _OUTCOMES[config]


@pytest.mark.parametrize("key", list(SCENARIOS))
def test_each_scenario_holds_on_mnist(mnist, key):
    """Both runs of each scenario, as the dashboard trains them, on the real digits: its claim
    holds there (the diverging one diverges, the small net fits its training digits worse, ...).
    Slow: about a minute for all six here; the claims are about MNIST, not synthetic blobs.
    The time bound is loose (this machine is shared): it catches a scenario grown far beyond
    the card's promise of seconds, not a busy moment."""
    scenario = SCENARIOS[key]
    started = time.perf_counter()
    baseline, variant = trained(scenario.baseline, mnist), trained(scenario.variant, mnist)
    seconds = time.perf_counter() - started
    found = takeaway(scenario, baseline, variant)
    assert found is not None and found.claim_holds, (key, found, baseline.status, variant.status)
    assert seconds < 90, f"{key} took {seconds:.0f} s for both runs: no longer a few seconds' demonstration"
    if key == "high_rate_diverges":
        assert variant.status == DIVERGED and baseline.status == FINISHED
    else:
        assert variant.status == FINISHED
