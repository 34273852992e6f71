"""Train: configure, start/pause/stop, watch it learn live, compare and keep runs."""

import streamlit as st

import app_state
import charts
import frame
import insight_ui
import presenter_ui
import runs_ui
import scenarios_ui
import widgets
from nets.advice import advise
from nets.config import ConfigError
from nets.workspace import WorkspaceError

SMOOTHING_HELP = "Exponential moving average, de-biased (as W&B smooths); the raw trace is drawn faint behind"
LIVE_LR_HELP = "Changes this run's learning rate from its next batch; the change is marked on the loss curve"

data = frame.page_setup()
ws = app_state.workspace()
active = ws.active()
records = ws.store.runs()  # one listing of the store for this page draw

st.title("Train")
# The controls sit above the columns at their natural width: in view before scrolling and
# never squeezed into a narrow settings column.
controls = st.container(horizontal=True)
settings, live = st.columns([1, 1.8], gap="large")


def start_run() -> None:
    """Start's callback: it runs before the page, so one run draws the training page."""
    try:
        config = app_state.settings_config()
        expected = app_state.epoch_estimate(config, data, records).seconds * config.epochs  # for the queue's estimates
        run_id = ws.start(data, config, stop_rules=app_state.stop_rules(), expected_seconds=expected)
    except (WorkspaceError, ValueError, ConfigError) as exc:
        app_state.set_train_error(str(exc))
    else:
        app_state.new_live_rate_control()
        app_state.set_selected_run_ids([])  # the live run is what the charts show now
        app_state.set_focus_run(run_id)


with settings:
    with st.container(border=True):
        config = widgets.settings_ui(rows=len(data.x_train), disabled=active is not None)
    widgets.stop_rules_ui(disabled=active is not None)
    if config is not None and active is None:
        st.caption(runs_ui.estimate_text(app_state.epoch_estimate(config, data, records), config.epochs))
        if busy := runs_ui.slots_text(ws.registry.scheduler):
            st.caption(busy)
    scenarios_ui.train_cards_ui(ws, data, records)

with controls:
    paused = active is not None and active.status == "paused"
    queued = active is not None and active.status == "queued"  # only Stop means something in the queue
    st.button("Start", type="primary", disabled=config is None or active is not None, key="train_start",
              on_click=start_run)  # fmt: skip
    st.button("Resume" if paused else "Pause", disabled=active is None or queued, key="train_pause",
              on_click=ws.resume if paused else ws.pause)  # fmt: skip
    st.button("Step", disabled=active is None or queued, key="train_step", on_click=ws.step,
              help="Train to the end of this epoch, then pause (press again for the next one)")  # fmt: skip
    st.button("Stop", disabled=active is None, key="train_stop", on_click=ws.stop)
    presenter_ui.link_ui()
if error := app_state.pop_train_error():
    st.error(error)
if note := app_state.pop_train_note():
    st.success(note)


baseline_live = scenarios_ui.baseline_training(ws)  # a scenario's variant may end first: its takeaway waits on this


# Intervals measured in the browser: ~1 s; a queued run's place changes slowly, and a class
# full of queued pages ticking every second would take the server's CPU from the trainings.
@st.fragment(run_every=None if active is None and not baseline_live else 2.0 if queued else 0.9)
def live_view() -> None:
    """The runs the user chose (the live run while it trains): curves, a banner, weights."""
    if baseline_live and not scenarios_ui.baseline_training(ws):
        st.rerun()  # the baseline ended: the takeaway, and a page that stops ticking
    if active is not None and (not active.live or (active.status == "queued") != queued):
        st.rerun()  # the run this page was drawn for has ended or left the queue: redraw all of it (controls too)
    shown = app_state.shown_runs(ws, active, records)
    if not shown:
        st.info("Pick a preset or your own settings and press **Start**. The charts fill in epoch by epoch.")
        epochs = config.epochs if config else None
        st.plotly_chart(app_state.figure(("curves", epochs), lambda: charts.training_figure([], epochs)),
                        key="train_curves_chart")  # fmt: skip
        return
    focus = shown[0]
    histories = {run.run_id: run.history() for run in shown}
    if not presenter_ui.figures_ui(focus, histories[focus.run_id]):  # presenting a finished run: figures say it all
        runs_ui.run_banner(focus, histories[focus.run_id], len(data.y_test))
    scenarios_ui.takeaway_ui(ws, [r.run_id for r in shown], records)
    snap = focus.snapshot()  # this server's job of the run: health and the live trace
    trace = snap.trace if snap is not None else focus.store.trace(focus.run_id)
    # Rate changes kept with the run's epochs, and this job's since its last epoch ended.
    changes = tuple(sorted({*focus.store.lr_changes(focus.run_id), *(snap.lr_changes if snap is not None else ())}))
    smoothing = app_state.smoothing()
    curves = app_state.figure(
        ("curves", *((r.run_id, len(histories[r.run_id])) for r in shown), smoothing, len(changes), len(trace)),
        lambda: charts.training_figure(
            charts.series_for([(r.name, histories[r.run_id]) for r in shown]), max(r.config.epochs for r in shown),
            trace, smoothing, changes,
        ),
        every=2.0 if snap is not None and snap.status == "running" else 0.0,  # new batch points: redraw every 2 s
    )  # fmt: skip
    st.plotly_chart(presenter_ui.enlarge(curves, presenter_ui.CURVES_HEIGHT), key="train_curves_chart")
    presenting = app_state.presenter().on
    if presenting:
        weights_view(focus)  # right under the curves: both in view on a projector
    mine = active is not None and focus.run_id == active.run_id
    left, right = st.columns(2)
    left.slider("Smoothing of the batch loss", 0.0, 0.99, 0.6, 0.01, key="train_smoothing", help=SMOOTHING_HELP)
    if mine:
        rate = snap.asked_rate if snap is not None and snap.asked_rate else focus.config.learning_rate
        key = app_state.live_rate_key()
        right.select_slider("Learning rate, live", app_state.LEARNING_RATES, app_state.nearest_choice(
            app_state.LEARNING_RATES, rate), key=key, help=LIVE_LR_HELP, format_func=lambda x: f"{x:g}",
            on_change=app_state.change_live_rate, args=(key,))  # fmt: skip
    health = (
        snap.health if snap is not None else app_state.stored_health(ws, focus.run_id, len(histories[focus.run_id]))
    )
    findings = advise(focus.config, histories[focus.run_id], health, diverged=focus.status == "diverged")
    insight_ui.advice_ui(findings, focus.config, live=mine)
    with st.expander("The net's health", expanded=bool(health)):
        insight_ui.health_ui(health, (focus.run_id,))
    if len(shown) > 1:
        st.caption(f"Drawn: {', '.join(r.name for r in shown)}. The banner and the weights are {focus.name}'s.")
    if not presenting:
        weights_view(focus)


def weights_view(focus) -> None:
    """The first-layer weights of 16 hidden units of the run the banner describes."""
    model = ws.model(focus.run_id)
    if model is not None:
        W1 = model.params()["W1"]
        units = list(range(min(16, W1.shape[1])))
        figure = app_state.figure(
            ("weights", focus.run_id, model.key),
            lambda: charts.weights_figure(W1, units),
            every=3.0 if model.live else 0.0,  # new weights every epoch: redrawing them costs the browser
        )
        if not app_state.presenter().on:  # presenting: the chart's own title says it, and the height is the charts'
            after = runs_ui.plural(model.epochs, "epoch")
            st.caption(f"First-layer weights of 16 hidden units of {focus.name}, after {after}.")
        st.plotly_chart(presenter_ui.enlarge(figure), key="train_weights_chart")


with live:
    live_view()

st.subheader("Runs")


@st.fragment(run_every=2.0 if active is not None else None)
def runs_table() -> list[int]:
    """The current model and the runs, oldest first (a new run adds a row at the bottom and
    the selection keeps its rows). While a run trains both are read again every 2 s, so that
    its row follows it (epochs, accuracy) and the current model changes when it finishes,
    instead of staying as the page was drawn (the live view above may already show it
    finished). Returns the chosen run ids."""
    listing = ws.store.runs() if active is not None else records
    st.caption(runs_ui.current_model_caption(ws, listing))
    runs = ws.runs(listing[: app_state.TRAIN_TABLE_ROWS])
    runs.reverse()
    if not runs:
        st.caption("Every run is kept here (and on the Compare page), with its settings and results, across reloads.")
        return []
    rows = [runs_ui.run_row(run, app_state.uploaded_accuracy(ws, run, data)) for run in runs]
    table = st.dataframe(rows, on_select="rerun", selection_mode="multi-row", key="train_runs_table",
                         hide_index=True, column_config=runs_ui.RUN_COLUMNS)  # fmt: skip
    chosen = [rows[i]["run"] for i in table.selection.rows if i < len(rows)]
    if chosen != app_state.selected_run_ids():
        app_state.set_selected_run_ids(chosen)
        app_state.set_focus_run(chosen[0] if chosen else None)
        st.rerun()  # the whole page: the curves and the actions follow the selection
    st.caption("Select runs to draw their curves; select one to act on it. Every run is also on the Compare page.")
    return chosen


chosen = runs_table()
if len(chosen) == 1:
    runs_ui.run_actions_ui(ws, ws.run(chosen[0]), data, prefix="train")

with st.expander("Add a model file (.npz) as a run"):
    st.file_uploader("Model file", type=["npz"], key="train_model_upload", on_change=app_state.take_model_upload)
    if message := app_state.pop_upload_message():
        (st.success if message[0] == "ok" else st.error)(message[1])
