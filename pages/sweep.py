"""Sweep: search the settings automatically (Optuna), trials in parallel (Dask), watched live."""

import datetime
import os
import re

import streamlit as st

import app_state
import charts
import compare_charts
import frame
import sweep_charts
from nets import compare
from nets.config import PRESETS
from nets.sweep_launch import SweepBusy, began, launch, launch_failure, launch_resume, workers_allowed
from nets.sweep_report import report
from nets.sweep_spec import MAX_WORKERS, PRUNERS, SAMPLERS, Knob, SweepSpec, SweepSpecError
from nets.workspace import WorkspaceError

data = frame.page_setup()
ws = app_state.workspace()
store = ws.store

st.title("Sweep")
st.caption(
    "Search the settings automatically: Optuna chooses each trial's settings (grid, random or TPE), stops hopeless "
    "trials early, and every trial is a run you can compare, draw with and inspect. Trials run in parallel worker "
    "processes; the sweep goes on when this tab closes. It maximises validation accuracy: the test set never chooses."
)

# The knobs the page offers, with the values their lists and ranges start from.
KNOBS = {
    "learning_rate": ("Learning rate", app_state.LEARNING_RATES, (1e-4, 0.1, True)),
    "hidden_size": ("Hidden units", app_state.HIDDEN_SIZES, (16, 1024, True)),
    "batch_size": ("Batch size", app_state.BATCH_SIZES, (16, 500, True)),
    "weight_decay": ("Weight decay", app_state.WEIGHT_DECAYS, (1e-6, 1e-2, True)),
    "momentum": ("Momentum", (0.0, 0.5, 0.8, 0.9, 0.95, 0.99), (0.0, 0.99, False)),
    "optimizer": ("Optimiser", ("sgd", "momentum", "adam"), None),
    "activation": ("Activation", ("relu", "sigmoid", "tanh"), None),
    "init": ("Initialisation", ("std", "xavier", "he"), None),
    "augment_shift": ("Shift digits by up to (pixels)", (0, 1, 2), None),
}


SCHEDULER = re.compile(r"(tcp|tls)://[A-Za-z0-9.\-]+:\d{1,5}")
SAMPLER_HELP = "grid: every combination of the lists; random; tpe: learns from the finished trials"
PRUNER_HELP = "Stops a trial after an epoch when its validation accuracy trails the others' (asha, median)"


def setting_text(name: str, value) -> str:
    return (
        f"{compare_charts.label(name)} {value:g}"
        if isinstance(value, float)
        else f"{compare_charts.label(name)} {value}"
    )


def duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


DEFAULT_MODES = {"learning_rate": "range", "hidden_size": "list"}
DEFAULT_LISTS = {"hidden_size": (64, 128, 256, 512)}


def knob_editor(name: str, base_value) -> Knob | None:
    """One row: keep the preset's value, or vary it over a list or (numbers) a range."""
    title, options, span = KNOBS[name]
    modes = ["fixed", "list", "range"] if span else ["fixed", "list"]
    c1, c2 = st.columns([1.25, 2], vertical_alignment="bottom")
    mode = c1.segmented_control(title, modes, default=DEFAULT_MODES.get(name, "fixed"), key=f"sweep_mode_{name}")
    if mode == "list":
        chosen = c2.multiselect(f"{title}: values", options, DEFAULT_LISTS.get(name, options[:2]),
                                key=f"sweep_list_{name}", label_visibility="collapsed")  # fmt: skip
        return Knob(name, choices=tuple(chosen)) if chosen else None
    if mode == "range":
        low, high, log = span
        r1, r2, r3 = c2.columns([1, 1, 0.6], vertical_alignment="bottom")
        as_int = isinstance(low, int) and isinstance(high, int)
        step = 1 if as_int else None
        low = r1.number_input("from", value=low, step=step, format=None if as_int else "%g", key=f"sweep_low_{name}")
        high = r2.number_input("to", value=high, step=step, format=None if as_int else "%g", key=f"sweep_high_{name}")
        log = r3.checkbox("log scale", log, key=f"sweep_log_{name}")
        return Knob(name, low=low, high=high, log=log)
    c2.caption(f"{title}: {base_value} (the preset's)")
    return None


def new_sweep_form(records: list) -> None:
    """Build a SweepSpec with widgets, show its estimated time, start it."""
    b1, b2, b3 = st.columns(3)
    preset = b1.selectbox("Start from the preset", list(PRESETS), list(PRESETS).index("fast"), key="sweep_preset")
    base = PRESETS[preset]
    epochs = b2.number_input("Epochs per trial", 1, 200, min(base.epochs, 5), key="sweep_epochs")
    samples = b3.number_input("Training digits (0 = all)", 0, len(data.x_train), 0, step=1000, key="sweep_samples",
                              help="Fewer digits make quick sweeps for a demo")  # fmt: skip
    knobs = [k for name in KNOBS if (k := knob_editor(name, getattr(base, name))) is not None]
    s1, s2, s3, s4, s5 = st.columns(5)
    sampler = s1.selectbox("Sampler", SAMPLERS, SAMPLERS.index("tpe"), key="sweep_sampler", help=SAMPLER_HELP)
    pruner = s2.selectbox("Pruner", PRUNERS, PRUNERS.index("asha"), key="sweep_pruner", help=PRUNER_HELP)
    trials = s3.number_input("Trials", 1, 1000, 12, key="sweep_trials")
    minutes = s4.number_input("Time budget (min, 0 = none)", 0.0, 24 * 60.0, 0.0, step=1.0, key="sweep_minutes")
    workers = s5.number_input("Workers", 1, MAX_WORKERS, min(2, os.cpu_count() or 1), key="sweep_workers",
                              help="Trials at once, one process each (this machine has "
                                   f"{os.cpu_count()} cores)")  # fmt: skip
    scheduler = st.text_input(
        "Dask cluster (optional)", key="sweep_scheduler", placeholder="tcp://HOST:8786",
        help="Run the trials on an existing Dask cluster, whose workers load MNIST themselves and can reach this "
        "runs directory; empty: worker processes on this machine",
    ).strip()  # fmt: skip
    if scheduler and not SCHEDULER.fullmatch(scheduler):
        st.warning("Not ready to start: a Dask scheduler's address looks like tcp://HOST:PORT.")
        return
    overrides = {"epochs": int(epochs)} | ({"train_samples": int(samples)} if samples else {})
    overrides = {k: v for k, v in overrides.items() if k not in {knob.name for knob in knobs}}
    try:
        spec = SweepSpec(knobs=tuple(knobs), preset=preset, overrides=tuple(sorted(overrides.items())),
                         sampler=sampler, pruner=pruner, trials=int(trials), timeout=minutes * 60 or None,
                         workers=int(workers))  # fmt: skip
    except SweepSpecError as exc:
        st.warning(f"Not ready to start: {exc}.")
        return
    estimate = app_state.epoch_estimate(spec.base_config(), data, records)
    trial_seconds = estimate.seconds * spec.base_config().epochs
    total = trial_seconds * (spec.planned_trials or 1) / spec.workers
    budget = f", or the time budget of {minutes:g} min" if minutes else ""
    st.caption(
        f"{spec.describe()}. About {duration(trial_seconds)} per trial with the preset's settings "
        f"(settings that cost more take longer), so about {duration(total)} in all{budget}; "
        "pruning saves part of it."
    )
    slots = ws.registry.scheduler  # the sweep's workers take the server's training slots
    allowed = workers_allowed(spec, slots, scheduler or None)
    if allowed == 0:
        st.warning(f"No training slot is free (this server trains {slots.slots} runs at once and they are all "
                   "taken): start the sweep when a run ends.")  # fmt: skip
    elif allowed < spec.workers:
        st.caption(f"Only {allowed} of this server's {slots.slots} training slots are free: the sweep starts with "
                   f"{allowed} worker{'s' if allowed > 1 else ''}, not {spec.workers}.")  # fmt: skip
    if st.button("Start the sweep", type="primary", key="sweep_start", disabled=allowed == 0):
        try:
            sweep_id = launch(spec, runs_dir=store.root, owner=ws.owner, scheduler=scheduler or None, slots=slots)
        except SweepBusy as exc:
            st.error(f"Not started: {exc}.")
            return
        app_state.set_starting_sweep(sweep_id)
        app_state.select_sweep(sweep_id)
        st.rerun()


def trial_table(found) -> None:
    """A row per trial, in widths that fit a two-knob sweep beside the sidebar of a 1024 px
    window (in Streamlit's default widths it scrolled sideways there)."""
    rows = [
        {"trial": r.trial, "run": r.run_id, "status": r.status, **r.params,
         "val_acc": r.val_acc, "test_acc": r.test_acc, "epochs": f"{r.epochs}/{r.planned_epochs}",
         "seconds": round(r.seconds, 1)}
        for r in reversed(found.rows)
    ]  # fmt: skip
    column = st.column_config.Column
    widths = {"trial": column("trial", width=48), "run": column("run", width=44), "status": column("status", width=64),
              "epochs": column("epochs", width=56, help="epochs trained of those planned")}  # fmt: skip
    for knob in found.spec.knobs:
        widths[knob.name] = column(compare_charts.label(knob.name), width=80)
    for key, name, width in (("val_acc", "validation", 80), ("test_acc", "test", 60)):
        widths[key] = st.column_config.NumberColumn(name, format="percent", width=width)
    widths["seconds"] = st.column_config.NumberColumn("s", width=44, help="seconds of training")
    st.dataframe(rows, hide_index=True, height=min(400, 38 + 35 * len(rows)), column_config=widths)


def live_view(sweep_id: str) -> None:
    """What the sweep has found, refreshed every second while it runs."""
    found = report(store, sweep_id)
    record, spec = found.record, found.spec
    running = found.count("running")
    m1, m2, m3, m4 = st.columns(4)
    planned = spec.planned_trials
    m1.metric("Trials done", f"{found.done}" + (f" of {planned}" if planned else ""))
    m2.metric("Pruned", found.count("pruned"), help=f"{found.epochs_saved} epochs saved by pruning")
    m3.metric("Running", running)
    best = found.best
    m4.metric(
        "Best validation", f"{best.val_acc:.2%}" if best else "–", help="The objective; the test set never chooses"
    )
    if best:
        settings = ", ".join(setting_text(k, v) for k, v in best.params.items())
        st.caption(f"Best so far: trial {best.trial} (run {best.run_id}): {settings}.")
    elif found.rows and not record.live:
        ended = ", ".join(f"{n} {s}" for s in ("diverged", "failed", "pruned", "stopped", "interrupted")
                          if (n := found.count(s)))  # fmt: skip
        st.warning(f"No trial trained all its epochs ({ended}), so there is no best: the table below says how "
                   "each ended; try a lower learning rate or other ranges.")  # fmt: skip
    # Each chart's title is the page's, above it: in the figure, Plotly's toolbar covered it.
    left, right = st.columns(2)
    with left:
        st.markdown("**Optimisation history**, by trial number")
        st.plotly_chart(sweep_charts.history_figure(found.rows, found.best_so_far()), key="sweep_history")
    with right:
        runs = store.runs(sweep=sweep_id)
        axes = [k.name for k in spec.knobs]
        if runs:
            st.markdown("**The trials' settings**, a line each")
            st.plotly_chart(compare_charts.parallel_lines_figure([compare.row(r) for r in reversed(runs)], axes,
                                                                 "best_val_acc"), key="sweep_parallel")  # fmt: skip
    live_ids = [r.run_id for r in found.rows if r.status == "running"]
    i1, i2 = st.columns(2)
    with i1:
        importance = app_state.sweep_importance(record, sweep_id, found.count("finished"))
        if importance:
            st.markdown("**Importance of each knob** for validation accuracy (Optuna's evaluator)")
            st.plotly_chart(sweep_charts.importance_figure(importance), key="sweep_importance")
        else:
            st.caption("The importance of each knob appears once three trials have finished.")
    with i2:
        if live_ids:
            histories = store.histories(live_ids[: len(charts.PALETTE)])
            series = charts.series_for([(f"trial {r.trial}", histories[r.run_id]) for r in found.rows
                                        if r.run_id in histories])  # fmt: skip
            st.plotly_chart(charts.training_figure(series, spec.base_config().epochs), key="sweep_running_curves")
            st.caption("The running trials' curves.")
    trial_table(found)
    if record.live != app_state.sweep_drawn_live():
        st.rerun()  # it ended (or was resumed): redraw the controls around this view


records = store.runs()
sweeps = store.sweeps()
ids = [s.sweep_id for s in sweeps]
starting = app_state.starting_sweep()
if starting and began(next((s for s in sweeps if s.sweep_id == starting), None)):
    app_state.set_starting_sweep(None)
    starting = None
if starting:
    why = launch_failure(store.root, starting)
    if why:
        st.error(f"The sweep did not start: {why}")
        app_state.set_starting_sweep(None)
    else:
        st.info("Starting the sweep: its workers are loading the data…")
        st.fragment(lambda: st.rerun() if began(next((s for s in store.sweeps() if s.sweep_id == starting), None))
                    or launch_failure(store.root, starting) else None, run_every=1.0)()  # fmt: skip

with st.expander("New sweep", expanded=not sweeps and not starting):
    new_sweep_form(records)

if not sweeps:
    st.stop()

selected = app_state.selected_sweep()
index = ids.index(selected) if selected in ids else 0
by_id = {s.sweep_id: s for s in sweeps}


def sweep_label(sweep_id: str) -> str:
    s = by_id[sweep_id]
    when = datetime.datetime.fromtimestamp(s.created).strftime("%d %b %H:%M")
    return f"{s.name} · started {when}"  # its status changes: the caption below says it


chosen = st.selectbox("Sweep", ids, index, format_func=sweep_label, key="sweep_choice")
app_state.select_sweep(chosen)
record = by_id[chosen]
spec = SweepSpec.from_dict(record.spec)
STATUS_TEXT = {"running": "Running", "finished": "Finished", "stopped": "Stopped", "interrupted": "Interrupted",
               "failed": "Failed"}  # fmt: skip
st.caption(f"**{STATUS_TEXT.get(record.status, record.status)}**: {spec.describe()}.")
mine = record.owner is None or record.owner == ws.owner

if record.live:
    c1, c2 = st.columns([1, 3], vertical_alignment="center")
    if record.stop_requested:
        c2.caption("Stopping: the running trials end within a second.")
    elif mine:
        c1.button("Stop the sweep", key="sweep_stop", on_click=store.request_sweep_stop, args=(chosen,))
    else:
        c2.caption("Started in another browser: only that browser may stop it.")
elif record.status in ("interrupted", "stopped") and mine and starting != chosen:  # not while it resumes
    if record.message:
        st.caption(f"It ended: {record.message}.")
    if st.button("Resume the sweep", key="sweep_resume"):
        try:
            launch_resume(chosen, runs_dir=store.root, slots=ws.registry.scheduler, workers=spec.workers)
        except SweepBusy as exc:
            st.error(f"Not resumed: {exc}.")
        else:
            app_state.set_starting_sweep(chosen)
            st.rerun()
elif record.status == "failed":
    st.error(f"The sweep failed: {record.message}")

app_state.set_sweep_drawn_live(record.live)
st.fragment(live_view, run_every=1.0 if record.live else None)(chosen)

found = report(store, chosen)
if not record.live and found.best is not None:
    best = found.best
    run = ws.run(best.run_id)
    st.subheader(f"The best trial: {best.trial} (run {best.run_id})")
    # A row of buttons at their natural width that wraps in a narrow window (in three equal
    # columns, "Load its settings into Train" lost its end to an ellipsis at 1024 px).
    with st.container(horizontal=True):
        use = st.button("Make it the current model", key="sweep_use_best", disabled=not run.has_weights)
        if st.button("Load its settings into Train", key="sweep_load_best", on_click=app_state.apply_settings,
                     args=(run.config,), disabled=ws.active() is not None):  # fmt: skip
            st.switch_page("pages/train.py")
        if st.button("Open its trials in Compare", key="sweep_compare", on_click=app_state.open_sweep_in_compare,
                     args=(chosen,)):  # fmt: skip
            st.switch_page("pages/compare.py")
    if use:
        try:
            ws.pin(best.run_id)
        except WorkspaceError as exc:
            st.error(str(exc))
        else:
            st.success(f"Run {best.run_id} is now the current model of the Draw and Misclassified pages.")
