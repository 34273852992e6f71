"""The Train page's insight into a run: its health panel and its advice, in words, with an
Apply button for each piece of advice. The engine (nets.health, nets.advice) hands over
records; the sentences are made here."""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st

import app_state
import charts
from nets.advice import (
    DEAD_UNITS,
    LR_TOO_HIGH,
    LR_TOO_LOW,
    OVERFITTING,
    SATURATED_UNITS,
    UNDERFITTING,
    Finding,
)
from nets.config import TrainConfig
from nets.health import EpochHealth

TITLES = {
    LR_TOO_HIGH: "The learning rate is too high",
    LR_TOO_LOW: "The learning rate is too low",
    OVERFITTING: "It is overfitting",
    UNDERFITTING: "It is underfitting",
    DEAD_UNITS: "Many hidden units are dead",
    SATURATED_UNITS: "Many hidden units are saturated",
}
FIELD_WORDS = {
    "learning_rate": "learning rate",
    "weight_decay": "weight decay",
    "augment_shift": "shift (px)",
    "epochs": "epochs",
    "hidden_size": "hidden units",
    "init": "initialisation",
}


def evidence_text(f: Finding) -> str:
    """Why the rule fired, with its numbers."""
    e = f.evidence
    if f.rule == LR_TOO_HIGH and "diverged" in e:
        return f"The run diverged at learning rate {e['learning_rate']:g}: its steps overshoot."
    if f.rule == LR_TOO_HIGH and "above_chance" in e:
        return (
            f"The training loss is {e['above_chance']:.2f}, worse than guessing (ln 10 = 2.30), at learning rate "
            f"{e['learning_rate']:g}: its steps overshoot."
        )
    if f.rule == LR_TOO_HIGH and "rising_to" in e:
        return (
            f"The training loss rose two epochs running ({e['rising_from']:.3f} → {e['rising_to']:.3f}): "
            "its steps overshoot."
        )
    if f.rule == LR_TOO_HIGH:
        return f"The training loss swings up and down (by up to {e['swing']:.0%} of its level) without getting lower."
    if f.rule == LR_TOO_LOW:
        return (
            f"The training loss falls steadily but slowly ({e['fall_per_epoch']:.1%} an epoch) "
            f"and is still {e['train_loss']:.3f}."
        )
    if f.rule == OVERFITTING:
        return (
            f"The validation loss was best after epoch {e['best_epoch']:.0f} ({e['best_val_loss']:.3f}) and is "
            f"{e['val_loss']:.3f} now, while the training loss went on falling ({e['best_train_loss']:.3f} → "
            f"{e['train_loss']:.3f}); training accuracy is {e['gap']:.1%} above validation."
        )
    if f.rule == UNDERFITTING:
        return (
            f"Training and validation loss are both high ({e['train_loss']:.3f}, {e['val_loss']:.3f}) and flat "
            f"({e['fall_per_epoch']:.2%} an epoch): the net cannot fit more."
        )
    if f.rule == DEAD_UNITS:
        return (
            f"{e['dead_share']:.0%} of the {e['units']:.0f} hidden units never switch on for any validation digit: "
            "dead ReLUs learn nothing more."
        )
    return (
        f"{e['saturated_share']:.0%} of the hidden units sit at the flat ends of their activation on most "
        "validation digits: their gradient has all but vanished."
    )


def _value(name: str, value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def fix_text(changes: dict, config: TrainConfig) -> str:
    """The change, field by field: 'learning rate 0.1 → 0.02, init std → he'."""
    return ", ".join(
        f"{FIELD_WORDS.get(k, k)} {_value(k, getattr(config, k))} → {_value(k, v)}" for k, v in changes.items()
    )


def advice_ui(findings: Sequence[Finding], config: TrainConfig, live: bool) -> None:
    """Each finding in a box: what, why, the fix, and an Apply button (keyed by the rule)."""
    for f in findings:
        with st.container(border=True, key=f"train_advice_{f.rule}"):
            st.markdown(f"**{TITLES[f.rule]}.** {evidence_text(f)}")
            into_run = live and bool(f.live_changes)
            where = "into this run from its next batch and into the settings" if into_run else "into the settings"
            changes = app_state.control_values(f.changes)  # what Apply puts into the controls, said as such
            st.caption(f"Suggested: {fix_text(changes, config)}.")
            note = f"Applied {fix_text(changes, config)} {where}" + ("." if into_run else "; press Start to try it.")
            st.button("Apply", key=f"train_apply_{f.rule}", on_click=app_state.apply_advice,
                      args=(config, changes, into_run, note), help=f"Puts the fix {where}")  # fmt: skip
    if app_state.pop_apply_pending():
        st.rerun()  # the whole page: the settings outside this live view must show the fix


def health_ui(health: Sequence[EpochHealth], run_key: tuple) -> None:
    """The health figures by epoch, and the weight histograms of a chosen epoch."""
    if not health:
        st.caption("The net's health is measured after each epoch while a run trains on this server.")
        return
    figure = app_state.figure(("health", *run_key, len(health)), lambda: charts.health_figure(health))
    st.plotly_chart(figure, key="train_health_chart")
    epochs = len(health)
    chosen = app_state.health_epoch(epochs)
    if epochs > 1:
        chosen = st.slider(
            "Weights after epoch", 1, epochs, key="train_health_epoch", on_change=app_state.pin_health_epoch
        )
    item = health[chosen - 1]
    hist = app_state.figure(("histogram", *run_key, chosen), lambda: charts.histogram_figure(item))
    st.plotly_chart(hist, key="train_histogram_chart")
    st.caption(
        f"Gradient size per weight and the size of one update relative to the weights (about 10⁻³ is the usual "
        f"healthy step), per layer; weights after epoch {chosen} against their initial spread (dotted). "
        f"Measuring this cost {item.seconds * 1000:.0f} ms in that epoch."
    )
