"""Misclassified: where the net goes wrong on the test set, and why."""

import streamlit as st

import app_state
import charts
import frame
import replay_ui
from nets.evaluation import confusion_matrix, evidence, misclassified, per_class_accuracy, runner_up, unsure_correct

PER_PAGE = 40
ALL = "all"
CLASSES = [ALL, *range(10)]
SORT_LABELS = {"index": "test index", "confidence": "most confident first", "margin": "largest margin first"}
UNSURE_BELOW = 90  # percent: "right but unsure" starts as the right answers less than 90% sure

data = frame.page_setup()
ws = app_state.workspace()

st.title("Misclassified")
records = ws.store.runs()  # one listing of the store for this page draw
choices = ws.model_choices(records)
labels = app_state.model_labels(ws, choices, records)
choice = st.selectbox("Model", choices, index=app_state.choice_index("mis_choice", choices), key="mis_model",
                      format_func=labels.get,
                      on_change=app_state.remember_choice, args=("mis_choice", "mis_model"))  # fmt: skip
view = ws.model(choice) or ws.current_model()
view = replay_ui.epoch_replay_ui(ws, view, "mis")  # "when did it learn to tell 4 from 9?"
ev = app_state.evaluation(view, data)
predictions = ev.predictions
cm = confusion_matrix(ev.labels, predictions)

if view.live:
    s1, s2 = st.columns([3, 1])
    s1.caption(f"A snapshot of {view.name} while it trains, after {view.epochs} of {view.config.epochs} epochs.")
    s2.button("Refresh snapshot", key="mis_refresh", help="Evaluate the run's newest weights")
with st.container(horizontal=True, gap="medium"):  # each metric as wide as its text; a narrow window wraps them
    st.metric("Model", view.name, width="content")
    st.metric("Test accuracy", f"{ev.accuracy:.2%}", width="content")
    st.metric("Misclassified", f"{ev.errors:,} of {len(ev.labels):,}", width="content")


left, right = st.columns([1.1, 1])
pick_cell, pick_digit, reset_page = app_state.mis_pick_cell, app_state.mis_pick_digit, app_state.mis_reset_page
true, pred = app_state.mis_cell(ALL)
cell = (true, pred) if ALL not in (true, pred) else None
left.plotly_chart(charts.confusion_figure(cm, cell), key="mis_confusion", on_select=pick_cell,
                  selection_mode="points", config={"displayModeBar": False})  # fmt: skip
left.caption("Rows: the true digit; columns: what the net said. Click a cell to see those digits.")
right.plotly_chart(charts.per_class_figure(per_class_accuracy(ev.labels, predictions)), key="mis_per_class")

SHOW_LABELS = {"mistakes": "Mistakes", "unsure": "Right but unsure"}
v1, v2 = st.columns([1, 1], vertical_alignment="bottom")
show = v1.segmented_control("Show", list(SHOW_LABELS), default="mistakes", key="mis_show", on_change=reset_page,
                            format_func=SHOW_LABELS.get) or "mistakes"  # fmt: skip
if show == "unsure":
    sure_below = v2.slider("Less sure than", 20, 100, UNSURE_BELOW, 1, format="%d%%", key="mis_unsure_below",
                           on_change=reset_page, help="Right answers given a probability below this")  # fmt: skip
f1, f2, f3 = st.columns(3)
true = f1.selectbox("True digit", CLASSES, key="mis_true", on_change=reset_page)
pred = f2.selectbox("Predicted", CLASSES, key="mis_pred", on_change=reset_page, disabled=show == "unsure")
sort = f3.selectbox("Sort by", list(SORT_LABELS), format_func=SORT_LABELS.get, key="mis_sort", on_change=reset_page,
                    disabled=show == "unsure")  # fmt: skip
t = None if true == ALL else int(true)
if show == "mistakes":
    shown = misclassified(ev, t, None if pred == ALL else int(pred), sort)
    what = f"{len(shown):,} digits"
else:
    shown = unsure_correct(ev, t, sure_below / 100)
    right = unsure_correct(ev, t, threshold=float("inf")).size  # every right answer (of this digit)
    what = f"{len(shown):,} of the {right:,} digits it read right were less than {sure_below}% sure"
pages = max(1, -(-len(shown) // PER_PAGE))
app_state.clamp_mis_page(pages)
page = st.number_input(f"Page (of {pages})", 1, pages, key="mis_page")
start = (page - 1) * PER_PAGE
chosen = shown[start : start + PER_PAGE]
st.caption(f"{what}; showing {start + 1 if len(chosen) else 0:,}-{start + len(chosen):,}. "
           "Under each: #test index, truth → prediction, confidence. Click a digit for its details.")  # fmt: skip
if len(chosen):
    # Two short lines, so that eight fit side by side at 1024 px ("#i <br> " keeps the words apart in the text).
    captions = [f"#{i} <br> {ev.labels[i]}→{predictions[i]} {ev.probs[i, predictions[i]]:.0%}" for i in chosen]
    st.plotly_chart(charts.digit_grid_figure(data.x_test[chosen], captions, chosen.tolist()), key="mis_grid",
                    on_select=pick_digit, selection_mode="points", config={"displayModeBar": False})  # fmt: skip
else:
    st.info("No digits match these filters.")

selected = app_state.mis_selected()
if selected is not None and 0 <= selected < len(ev.labels):
    truth, guess = int(ev.labels[selected]), int(predictions[selected])
    other = runner_up(ev.probs[selected])
    toward, away = (guess, truth) if guess != truth else (guess, other)
    st.subheader(f"Test digit #{selected}: truth {truth}, the net said {guess} ({ev.probs[selected, guess]:.1%})")
    st.caption(f"Runner-up: {other} ({ev.probs[selected, other]:.1%}).")
    d1, d2 = st.columns([1.3, 1])
    pixels = evidence(view.net(), data.x_test[selected], toward, away)
    d1.plotly_chart(charts.evidence_figure(data.x_test[selected], pixels, toward, away), key="mis_evidence")
    d1.caption(f"Red pixels pushed the net toward {toward}, blue ones toward {away} (input × gradient of the "
               "difference of the two scores, exact for this net).")  # fmt: skip
    d2.plotly_chart(charts.probability_figure(ev.probs[selected], truth, guess), key="mis_probs")
