"""Compare: every run in the store, from the dashboard, the command line, uploads and sweeps."""

import datetime

import streamlit as st

import app_state
import charts
import compare_charts
import frame
import runs_ui
from nets import compare
from nets.workspace import WorkspaceError

data = frame.page_setup()
ws = app_state.workspace()
records = ws.store.runs()

st.title("Compare")


@st.fragment(run_every=3.0)
def watch_store(seen: tuple) -> None:
    """Runs started elsewhere (the command line, another browser) appear without a reload."""
    if app_state.store_signature(ws.store) != seen:
        st.rerun()


watch_store(app_state.store_signature(ws.store, records))
if not records:
    st.info("No runs yet. Train one on the Train page, or from the command line: `python -m nets.train`.")
    st.page_link("pages/train.py", label="Go to Train", icon="📈")
    st.stop()

f1, f2, f3, f4 = st.columns(4)
statuses = f1.multiselect("Status", sorted({r.status for r in records}), key="compare_status")
sources = f2.multiselect("Source", sorted({r.source for r in records}), key="compare_source")
tags = f3.multiselect("Tag", sorted({t for r in records for t in r.tags}), key="compare_tags")
sweeps = sorted({r.sweep for r in records if r.sweep})
sweep = f4.selectbox("Sweep", [None, *sweeps], format_func=lambda s: "all" if s is None else s, key="compare_sweep")
differences = st.toggle("Only the settings that differ", True, key="compare_differences",
                        help="Hide the settings that are the same in every listed run")  # fmt: skip

shown = [r for r in reversed(records) if compare.matches(r, statuses, sources, tags, sweep)]  # oldest first
if not shown:
    st.info("No run matches these filters.")
    st.stop()
settings = compare.differing(shown) if differences else list(compare.SETTINGS)
rows = [compare.row(r) for r in shown]
columns = ["run", "name", "status", "source", "tags", *(["sweep"] if sweeps else []), *settings,
           "best_val_acc", "test_acc", "epochs_done", "train_seconds", "created"]  # fmt: skip
table_rows = [{c: r[c] for c in columns} for r in rows]
for r in table_rows:
    r["created"] = datetime.datetime.fromtimestamp(r["created"])
table_key = app_state.compare_table_key(statuses, sources, tags, sweep)
table = st.dataframe(
    table_rows, on_select="rerun", selection_mode="multi-row", key=table_key, hide_index=True, height=320,
    column_config=app_state.compare_columns(),
)  # fmt: skip
chosen = [shown[i] for i in table.selection.rows if i < len(shown)]
st.caption(
    f"{runs_ui.plural(len(shown), 'run')} of {len(records):,}"
    + (f"; settings that differ: {', '.join(settings)}" if differences and settings else "")
    + ". Sort by a column's header; select runs to overlay their curves and act on them."
)

p1, p2 = st.columns(2)
with p1:
    default_axes = settings[:4] or ["learning_rate", "hidden_size"]
    axes = st.multiselect("Parallel coordinates: settings", list(compare.SETTINGS), default_axes, key="compare_axes")
    metric = st.selectbox("Metric", compare.METRICS, format_func=compare_charts.label, key="compare_metric")
    interactive = st.toggle("Interactive (drag on an axis to filter)", False, key="compare_interactive",
                            help="Plotly's WebGL parallel coordinates: slow to draw where the browser has no "
                                 "graphics card")  # fmt: skip
    if axes:
        best = compare.best_rows(rows, metric, compare.PARALLEL_LINES, keep={r.run_id for r in chosen})
        build = compare_charts.parallel_figure if interactive else compare_charts.parallel_lines_figure
        st.plotly_chart(build(best, axes, metric), key="compare_parallel")
        if len(best) < len(rows):
            st.caption(f"The {len(best):,} best of {len(rows):,} runs by {compare_charts.label(metric)}, "
                       "with the selected ones: more lines hide the pattern (and cost the browser).")  # fmt: skip
with p2:
    x = st.selectbox("Scatter: setting", compare.NUMERIC_SETTINGS, compare.NUMERIC_SETTINGS.index("learning_rate"),
                     format_func=compare_charts.label, key="compare_x")  # fmt: skip
    y = st.selectbox("against", compare.METRICS, format_func=compare_charts.label, key="compare_y")
    st.plotly_chart(compare_charts.scatter_figure(rows, x, y), key="compare_scatter")

if not chosen:
    st.caption("Select runs in the table to see their curves and to rename, tag, note, delete or use them.")
    st.stop()

st.subheader(f"Selected: {', '.join(r.name for r in chosen[:8])}" + (" …" if len(chosen) > 8 else ""))
drawn = chosen[: len(charts.PALETTE)]
histories = ws.store.histories([r.run_id for r in drawn])
st.plotly_chart(
    charts.training_figure(charts.series_for([(r.name, histories[r.run_id]) for r in drawn]),
                           max(r.config.epochs for r in drawn)),
    key="compare_curves",
)  # fmt: skip
if len(chosen) > len(drawn):
    st.caption(f"Curves of the first {len(drawn)} selected runs; the others are in the table.")

if message := app_state.pop_compare_message():
    st.success(message)
mine = [r for r in chosen if ws.may_control(r)]
if len(mine) < len(chosen):
    st.caption(
        f"{runs_ui.plural(len(chosen) - len(mine), 'selected run')} started in another browser: only that browser "
        "may rename, tag or delete them."
    )

a1, a2 = st.columns(2)
with a1:
    new_tag = st.text_input("Add a tag to the selected runs", key="compare_new_tag", max_chars=40)
    if st.button("Add tag", disabled=not (new_tag.strip() and mine), key="compare_add_tag"):
        for r in mine:
            ws.set_tags(r.run_id, [*r.tags, new_tag])
        app_state.set_compare_message(f"Tagged {runs_ui.plural(len(mine), 'run')} '{new_tag.strip()}'.")
        st.rerun()
with a2:
    deleting = app_state.pending_delete()
    if deleting and set(deleting) == {r.run_id for r in mine}:
        st.warning(f"Delete {runs_ui.plural(len(mine), 'run')} and their weight files? This cannot be undone.")
        y1, y2 = st.columns(2)
        if y1.button("Yes, delete", type="primary", key="compare_delete_yes"):
            errors = []
            for r in mine:
                try:
                    ws.delete(r.run_id)
                except WorkspaceError as exc:
                    errors.append(str(exc))
            app_state.set_pending_delete(None)
            app_state.set_compare_message(" ".join(errors) or f"Deleted {runs_ui.plural(len(mine), 'run')}.")
            st.rerun()
        y2.button("Cancel", key="compare_delete_no", on_click=app_state.set_pending_delete, args=(None,))
    else:
        st.button(f"Delete {runs_ui.plural(len(mine), 'run')}…", disabled=not mine, key="compare_delete",
                  on_click=app_state.set_pending_delete, args=([r.run_id for r in mine],))  # fmt: skip

if len(chosen) == 1:
    run = ws.run(chosen[0].run_id)
    with st.form("compare_edit", border=True):
        name = st.text_input("Name", run.name, max_chars=80, disabled=not ws.may_control(run.record))
        notes = st.text_area("Notes", run.record.notes, height=80, disabled=not ws.may_control(run.record))
        if st.form_submit_button("Save name and notes", disabled=not ws.may_control(run.record)):
            try:
                ws.rename(run.run_id, name)
                ws.set_notes(run.run_id, notes)
            except (WorkspaceError, ValueError) as exc:
                st.error(str(exc))
            else:
                app_state.set_compare_message(f"Saved {name.strip()}.")
                st.rerun()
    runs_ui.run_actions_ui(ws, run, data, prefix="compare")
