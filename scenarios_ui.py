"""Guided scenarios in words and widgets: a card per scenario (its story and one button), the
start of its two runs, and the takeaway written from what the runs measured.

The engine (nets.scenarios) holds the configs and judges the runs; this module only says it.
The baseline is trained once per server with no owner (anyone may use it), so a class pressing
the same card shares it; the variant is the pressing browser's own run.
"""

from __future__ import annotations

import streamlit as st

import app_state
from nets.config import PRESETS, TrainConfig
from nets.scenarios import DIVERGED, FINISHED, SCENARIOS, Outcome, Scenario, Takeaway, newest_run, takeaway
from nets.store import LIVE_STATUSES
from nets.workspace import Workspace, WorkspaceError

# Words keyed by scenario; {b} and {v} are its baseline's and its variant's configs, so the
# words follow the configs.
TITLES = {
    "notebook_vs_modern": "The notebook's recipe vs a modern one",
    "high_rate_diverges": "A learning rate of {v.learning_rate:g} diverges",
    "small_net_underfits": "{v.hidden_size} hidden units underfit",
    "no_decay_overfits": "No weight decay overfits {v.train_samples:,} digits",
    "tiny_sigmoid_slow": "Sigmoid with tiny initial weights learns slowly",
    "shift_helps": "Shifting digits by {v.augment_shift} pixel helps",
}
STORIES = {
    "notebook_vs_modern": "The notebook trained plain SGD for {b.epochs} epochs. He initialisation, Adam and a "
    "cosine schedule are what people use today: how far do they get in {v.epochs}? Both on {v.train_samples:,} "
    "digits, half the training set, to keep it short.",
    "high_rate_diverges": "A bigger step should learn faster. Take plain SGD from a rate of {b.learning_rate:g} to "
    "{v.learning_rate:g} and watch.",
    "small_net_underfits": "Shrink the hidden layer from {b.hidden_size} units to {v.hidden_size}. Does the net "
    "still fit the digits it trains on?",
    "no_decay_overfits": "Train on only {v.train_samples:,} digits for {v.epochs} epochs, with and without an L2 "
    "penalty on the weights.",
    "tiny_sigmoid_slow": "Sigmoid units starting from weights of {v.init_std:g} (the notebook's init) against "
    "{b.init} initialisation, the same optimiser, {v.train_samples:,} digits.",
    "shift_helps": "Move each training digit by up to {v.augment_shift} pixel, a new shift every epoch: "
    "{v.train_samples:,} digits, {v.epochs} epochs.",
}


def words(table: dict, key: str) -> str:
    scenario = SCENARIOS[key]
    return table[key].format(b=scenario.baseline, v=scenario.variant)


WORDS = {  # a config field as a run's name says it
    "hidden_size": "{} units",
    "activation": "{}",
    "init": "{} init",
    "init_std": "init std {:g}",
    "optimizer": "{}",
    "learning_rate": "lr {:g}",
    "weight_decay": "decay {:g}",
    "augment_shift": "shift {} px",
}


def config_words(config: TrainConfig, scenario: Scenario) -> str:
    """A scenario run's name: its preset when it is one, else the settings its scenario changes."""
    whole = config.replace(train_samples=None)
    preset = next((name for name, c in PRESETS.items() if c == whole), None)
    if preset is not None:
        return f"{preset} preset"
    changed = [name for name in scenario.changes() if name in WORDS]
    return ", ".join(WORDS[name].format(getattr(config, name)) for name in changed) or "baseline"


def run_names(scenario: Scenario) -> tuple[str, str]:
    subset = f" on {scenario.variant.train_samples:,} digits" if scenario.variant.train_samples else ""
    return (
        f"{config_words(scenario.baseline, scenario)}{subset} (scenario baseline)",
        f"{config_words(scenario.variant, scenario)}{subset}",
    )


def start(ws: Workspace, data, key: str) -> None:
    """A card's button (a callback): the variant's settings into the controls, the shared
    baseline found or started, the variant started as this browser's run, the baseline pinned."""
    scenario = SCENARIOS[key]
    if ws.active() is not None:
        app_state.set_scenario_error("Your run is still training: stop it before starting a scenario.")
        return
    base_name, variant_name = run_names(scenario)
    try:
        with app_state.scenario_lock():
            baseline = shared_baseline(ws, scenario) or ws.registry.start(data, scenario.baseline, None, name=base_name)
        variant = ws.start(data, scenario.variant, name=variant_name)
    except (WorkspaceError, ValueError) as exc:
        app_state.set_scenario_error(f"The scenario could not start: {exc}")
        return
    app_state.load_scenario_settings(scenario.variant)
    app_state.new_live_rate_control()
    app_state.set_selected_run_ids([])
    app_state.set_focus_run(variant)
    app_state.set_scenario_pick(app_state.ScenarioPick(key, baseline, variant))
    app_state.set_scenario_started()


def shared_baseline(ws: Workspace, scenario: Scenario) -> int | None:
    """The run to pin as the scenario's baseline: a finished run of its config (any browser's;
    the same config gives the same numbers), else one this server is training now."""
    records = ws.store.runs()
    found = newest_run(records, scenario.baseline, (FINISHED,))
    if found is None:
        found = next((r for r in records if r.config == scenario.baseline and r.status in LIVE_STATUSES
                      and (job := ws.registry.job(r.run_id)) is not None and job.alive), None)  # fmt: skip
    return found.run_id if found is not None else None


def baseline_training(ws: Workspace) -> bool:
    """Whether this session's scenario baseline is training in this server now."""
    pick = app_state.scenario_pick()
    job = ws.registry.job(pick.baseline_run) if pick is not None else None
    return job is not None and job.alive


def outcomes(ws: Workspace, key: str, records: list) -> tuple[Outcome, Outcome] | None:
    """The two runs a card reports: this session's when it ran the scenario, else the newest
    ended pair in the store (the same configs give the same numbers). None when there is none."""
    scenario, pick = SCENARIOS[key], app_state.scenario_pick()
    by_id = {r.run_id: r for r in records}
    if pick is not None and pick.key == key and pick.baseline_run in by_id and pick.variant_run in by_id:
        pair = by_id[pick.baseline_run], by_id[pick.variant_run]
    else:
        pair = (
            newest_run(records, scenario.baseline, (FINISHED,)),
            newest_run(records, scenario.variant, (FINISHED, DIVERGED)),
        )
        if None in pair:
            return None
    histories = ws.store.histories([r.run_id for r in pair])
    return tuple(Outcome(tuple(histories.get(r.run_id, [])), status(ws, r)) for r in pair)


def status(ws: Workspace, record) -> str:
    """A run's status, the live job's when this server trains it (fresher than the listing)."""
    job = ws.registry.job(record.run_id)
    return job.snapshot().status if job is not None else record.status


def card_ui(ws: Workspace, data, key: str, records: list, prefix: str) -> None:
    """One scenario's card: title, story, the button (it starts the runs), and what they measured."""
    with st.container(border=True, key=f"{prefix}_card_{key}"):
        st.markdown(f"**{words(TITLES, key)}**")
        st.caption(words(STORIES, key))
        st.button("Run it", key=f"{prefix}_scenario_{key}", on_click=start, args=(ws, data, key),
                            disabled=ws.active() is not None, help="Sets the controls and trains both runs; "
                            "the baseline is trained once per server and shared")  # fmt: skip
        found = outcomes(ws, key, records)
        if found is not None:
            result = takeaway(SCENARIOS[key], *found)
            if result is None:
                st.caption(progress_text(*found))
            else:
                st.markdown(takeaway_text(key, result, found[1].status))


def cards_ui(ws: Workspace, data, records: list, prefix: str, columns: int = 1) -> bool:
    """Every scenario's card, `columns` a row; True when one was started (the caller shows it)."""
    error = app_state.pop_scenario_error()
    if error:
        st.error(error)
    keys = list(SCENARIOS)
    for row in range(0, len(keys), columns):
        cells = st.columns(columns) if columns > 1 else [st.container()]
        for cell, key in zip(cells, keys[row : row + columns], strict=False):
            with cell:
                card_ui(ws, data, key, records, prefix)
    return app_state.pop_scenario_started()


def train_cards_ui(ws: Workspace, data, records: list) -> None:
    """The Train page's cards, folded under the settings (they set those settings)."""
    with st.container(key="train_scenarios"), st.expander("Guided scenarios"):
        cards_ui(ws, data, records, prefix="train")


def progress_text(baseline: Outcome, variant: Outcome) -> str:
    """Where the two runs are while there is no takeaway (training, or one did not end)."""
    said = f"baseline {baseline.status} ({_epochs(len(baseline.history))}), variant {variant.status} " + (
        f"({_epochs(len(variant.history))})"
    )
    if any(o.status in (*LIVE_STATUSES, "queued") for o in (baseline, variant)):
        return f"Training: {said}."
    return f"No takeaway: {said}. Run it again to train what is missing."


def takeaway_ui(ws: Workspace, shown_ids: list[int], records: list) -> None:
    """Under the Train page's banner: the takeaway of this session's scenario while its runs are
    drawn, and the button that unpins its baseline."""
    pick = app_state.scenario_pick()
    if pick is None or pick.variant_run not in shown_ids:
        return
    found = outcomes(ws, pick.key, records)
    result = takeaway(SCENARIOS[pick.key], *found) if found is not None else None
    with st.container(border=True, key="train_takeaway"):
        if result is None:
            st.caption(f"**{words(TITLES, pick.key)}**: the takeaway appears here when both runs have ended.")
        else:
            st.markdown(f"**{words(TITLES, pick.key)}**: {takeaway_text(pick.key, result, found[1].status)}")
        if pick.pinned:
            st.button("Unpin the baseline", key="train_unpin_baseline", on_click=app_state.unpin_baseline)


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{x:.2%}"


def _epochs(n: int) -> str:
    return f"{n} epoch" + ("" if n == 1 else "s")


def takeaway_text(key: str, t: Takeaway, variant_status: str = FINISHED) -> str:
    """The sentence a scenario's numbers make: what held, or that it did not hold this time."""
    f, s = t.figures, SCENARIOS[key]
    if variant_status == DIVERGED and key != "high_rate_diverges":
        return "Not this time: the variant diverged, so there is nothing to compare."
    if key == "notebook_vs_modern":
        said = (
            f"the modern recipe read {_pct(f['variant_test_acc'])} of the test digits right after "
            f"{_epochs(f['variant_epochs'])} ({f['variant_seconds']:.1f} s of training), the notebook's "
            f"{_pct(f['baseline_test_acc'])} after {_epochs(f['baseline_epochs'])} ({f['baseline_seconds']:.1f} s): "
            f"{f['variant_errors']:,} test errors against {f['baseline_errors']:,}"
        )
        if f["variant_epochs_to_beat"] is not None:
            said += f", and it passed the notebook's final accuracy after epoch {f['variant_epochs_to_beat']}"
    elif key == "high_rate_diverges":
        when = "in its first epoch" if not f["variant_epochs_done"] else f"after {_epochs(f['variant_epochs_done'])}"
        if f["variant_diverged"]:
            said = (
                f"at a learning rate of {f['variant_rate']:g} the loss blew up {when} and the run stopped as diverged"
            )
        else:
            said = f"at a learning rate of {f['variant_rate']:g} the run did not diverge"
        said += f"; at {f['baseline_rate']:g} the same net reached {_pct(f['baseline_test_acc'])} test accuracy"
    elif key == "small_net_underfits":
        small, big = s.variant.hidden_size, s.baseline.hidden_size
        said = (
            f"with {small} hidden units the net got {_pct(f['variant_train_acc'])} of its own training digits right "
            f"in its last epoch ({big} units: {_pct(f['baseline_train_acc'])}), and {_pct(f['variant_test_acc'])} "
            f"of the test digits ({_pct(f['baseline_test_acc'])})"
        )
    elif key == "no_decay_overfits":
        said = (
            f"without weight decay the net got {_pct(f['variant_train_acc'])} of its {f['train_samples']:,} training "
            f"digits right while its validation loss climbed {f['variant_val_loss_rise']:.2f} above its best "
            f"(epoch {f['variant_best_val_loss_epoch']}); with a decay of {s.baseline.weight_decay:g} it climbed "
            f"{f['baseline_val_loss_rise']:.2f}. Validation accuracy: {_pct(f['variant_val_acc'])} without, "
            f"{_pct(f['baseline_val_acc'])} with"
        )
    elif key == "tiny_sigmoid_slow":

        def reached(n):
            return f"after {_epochs(n)}" if n is not None else f"not within {_epochs(f['epochs'])}"

        said = (
            f"from weights of {s.variant.init_std:g} the sigmoid net reached {f['target']:.0%} validation accuracy "
            f"{reached(f['variant_epochs_to_target'])}, with {s.baseline.init} init "
            f"{reached(f['baseline_epochs_to_target'])}; after one epoch: {_pct(f['variant_first_val_acc'])} "
            f"against {_pct(f['baseline_first_val_acc'])}"
        )
    else:  # shift_helps
        said = (
            f"shifting the training digits took the test errors from {f['baseline_errors']:,} to "
            f"{f['variant_errors']:,} ({_pct(f['baseline_test_acc'])} to {_pct(f['variant_test_acc'])}), while it "
            f"got {_pct(f['variant_train_acc'])} of the moving training digits right against "
            f"{_pct(f['baseline_train_acc'])} of the still ones"
        )
    verdict = "Measured here" if t.claim_holds else "Not this time"
    return f"{verdict}: {said}."
