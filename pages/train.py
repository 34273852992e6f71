"""Train: configure, start/pause/stop, watch it learn live, compare and keep runs."""

import streamlit as st

import app_state
import charts
import frame
import widgets
from nets.checkpoint import ModelFileError, load_model, model_bytes
from nets.config import ConfigError
from nets.workspace import WorkspaceError, history_csv

data = frame.page_setup()
ws = app_state.workspace()
ws.refresh()
active = ws.active()

st.title("Train")
settings, live = st.columns([1, 2.2], gap="large")


def start_run() -> None:
    """Start's callback: it runs before the page, so one run draws the training page."""
    try:
        ws.start(data, app_state.settings_config())
    except (WorkspaceError, ValueError, ConfigError) as exc:
        app_state.set_train_error(str(exc))


with settings, st.container(border=True):
    config = widgets.settings_ui(rows=len(data.x_train), disabled=active is not None)
    b1, b2, b3 = st.columns(3)
    b1.button("Start", type="primary", disabled=config is None or active is not None, key="train_start",
              on_click=start_run)  # fmt: skip
    paused = active is not None and active.snapshot is not None and active.snapshot.status == "paused"
    b2.button("Resume" if paused else "Pause", disabled=active is None, key="train_pause",
              on_click=ws.resume if paused else ws.pause)  # fmt: skip
    b3.button("Stop", disabled=active is None, key="train_stop", on_click=ws.stop)
    if error := app_state.pop_train_error():
        st.error(error)


@st.fragment(run_every=0.9 if active is not None else None)  # intervals measured in the browser: ~1 s
def live_view() -> None:
    """The run being trained (or the latest one), with the selected runs overlaid."""
    ws.refresh()
    now_active = ws.active()
    if app_state.mark_live(now_active.run_id if now_active else None):
        st.rerun()  # the run just ended: one full rerun refreshes the table and the controls
    run = now_active or (ws.runs[max(ws.runs)] if ws.runs else None)
    if run is None:
        st.info("Pick a preset or your own settings and press **Start**. The charts fill in epoch by epoch.")
        empty = app_state.figure(
            ("curves", config.epochs if config else None),
            lambda: charts.training_figure([], config.epochs if config else None),
        )
        st.plotly_chart(empty, key="train_curves_chart")
        return
    snap = run.snapshot
    if run.live and snap is not None:
        p = snap.progress
        epoch = (p.epoch + 1) if p else 1
        speed = f" · {snap.samples_per_sec:,.0f} samples/s" if snap.samples_per_sec else ""
        left = f" · about {snap.seconds_left:.0f} s left" if snap.seconds_left is not None else ""
        st.progress(
            (p.batch / p.batches) if p else 0.0,
            text=f"{run.name}: {snap.status}, epoch {epoch} of {run.config.epochs}, "
            f"batch {p.batch if p else 0} of {p.batches if p else '…'}{speed}{left}",
        )
    elif run.status == "diverged":
        st.error(f"{run.name} diverged: {run.message}")
    elif run.status == "failed":
        st.error(f"{run.name} failed: {run.message}")
    elif run.history:
        last = run.history[-1]
        st.success(
            f"{run.name} {run.status} after {len(run.history)} epochs: test accuracy {last.test_acc:.2%}, "
            f"{last.test_errors} of {len(data.y_test):,} test digits misclassified. "
            f"Training took {run.train_seconds:.2f} s ({run.samples_per_sec:,.0f} samples/s)."
        )
    shown = [run, *(ws.runs[i] for i in app_state.selected_run_ids() if i in ws.runs and i != run.run_id)]
    curves = app_state.figure(
        ("curves", *((r.run_id, len(r.history)) for r in shown)),
        lambda: charts.training_figure(
            charts.series_for([(r.name, r.history) for r in shown]), max(r.config.epochs for r in shown)
        ),
    )
    st.plotly_chart(curves, key="train_curves_chart")
    version, weights = run.job.weights(max_age=3.0) if run.live else (-1, run.net.params if run.net else None)
    if weights is not None:
        units = list(range(min(16, weights["W1"].shape[1])))
        figure = app_state.figure(
            ("weights", run.run_id, version),
            lambda: charts.weights_figure(weights["W1"], units),
            every=3.0 if run.live else 0.0,  # new weights every epoch: redrawing them costs the browser
        )
        st.plotly_chart(figure, key="train_weights_chart")


with live:
    live_view()

st.subheader("Runs")
upload = st.file_uploader("Add a model file (.npz) as a run", type=["npz"], key="train_model_upload")
if upload is not None and app_state.new_upload(upload.file_id):
    try:
        added = ws.add_model(load_model(upload.getvalue(), name=upload.name), upload.name)
        st.success(f"Loaded {upload.name} as {added.name}; it is now the current model.")
    except ModelFileError as exc:
        st.error(f"Not loaded, nothing changed: {exc}")

current = ws.current()
st.caption(
    f"Current model, used by the other pages: **{current.name}** ({current.status}"
    + (f", {current.test_acc:.2%} test accuracy)" if current.test_acc is not None else ")")
    if current
    else "No current model yet: it is the last run that finishes, or a model you add or choose below."
)
if not ws.runs:
    st.caption("Every run of this session is kept here, with its settings and results.")
else:
    rows = [run.summary() for run in ws.runs.values()]
    percent = st.column_config.NumberColumn(format="percent")
    table = st.dataframe(
        rows,
        on_select="rerun",
        selection_mode="multi-row",
        key="train_runs_table",
        hide_index=True,
        column_config={"best val acc": percent, "test acc": percent, "lr": st.column_config.NumberColumn(format="%g")},
    )
    chosen = [rows[i]["run"] for i in table.selection.rows]
    if chosen != app_state.selected_run_ids():
        app_state.set_selected_run_ids(chosen)
        st.rerun()
    st.caption("Select runs to overlay their curves on the charts; select one to act on it.")
    if len(chosen) == 1:
        run = ws.runs[chosen[0]]
        a1, a2, a3, a4 = st.columns(4)
        if a1.button("Use as the current model", disabled=not run.usable, key="train_use_model"):
            ws.set_current(run.run_id)
            st.rerun()
        a2.button("Load its settings", key="train_load_settings", disabled=active is not None,
                  on_click=app_state.apply_settings, args=(run.config,))  # fmt: skip
        if run.usable:
            meta = {"test_acc": run.test_acc, "epochs_trained": len(run.history), "name": run.name}
            model_file = model_bytes(run.net, run.config, meta)
            a3.download_button("Download model (.npz)", model_file, f"mnist-run-{run.run_id}.npz", key="train_dl_model")
        if run.history:
            csv_text = history_csv(run.history)
            a4.download_button("Download metrics (CSV)", csv_text, f"mnist-run-{run.run_id}.csv", key="train_dl_csv")
