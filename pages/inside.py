"""Inside: what the hidden units do for a digit, where digits live, how sure the net should be,
how it copes with spoiled digits, and all of it as the run was after any kept epoch."""

from functools import partial

import numpy as np
import streamlit as st

import app_state
import charts
import frame
import inside_charts
import replay_ui
from nets.calibration import at_threshold, confidence_histograms, coverage_curve, reliability
from nets.inside import ablation, most_exciting, read, top_units

TOP = 6  # units shown for and against the predicted digit
VIEWS = {"digit": "A digit, through the net", "map": "Where digits live", "calibration": "How sure",
         "robustness": "Spoiled digits"}  # fmt: skip
SOURCES = {"draw": "From the Draw page", "test": "A test digit"}
NO_BAR = {"displayModeBar": False}

data = frame.page_setup()
ws = app_state.workspace()

st.title("Inside the net")
records = ws.store.runs()  # one listing of the store for this page draw
choices = ws.model_choices(records)
labels = app_state.model_labels(ws, choices, records)
m1, m2 = st.columns([1.6, 1], vertical_alignment="bottom")
choice = m1.selectbox("Model", choices, index=app_state.choice_index("inside_choice", choices), key="inside_model",
                      format_func=labels.get,
                      on_change=app_state.remember_choice, args=("inside_choice", "inside_model"))  # fmt: skip
latest = ws.model(choice) or ws.current_model()
view = replay_ui.epoch_replay_ui(ws, latest, "inside", m2, explain=True)
params, activation = view.params(), view.config.activation
hidden_size = params["W1"].shape[1]

drawn = app_state.drawn_input()
has_drawing = drawn is not None and not drawn.empty
app_state.inside_defaults("draw" if has_drawing else "test", app_state.mis_selected() or 0)
with st.container(horizontal=True, gap="medium", vertical_alignment="bottom"):
    source = st.segmented_control("Digit", list(SOURCES), key="inside_source", format_func=SOURCES.get) or "test"
    index = int(st.number_input("Test digit #", 0, len(data.x_test) - 1, key="inside_test_index", step=1, width=150))
    st.button("Random", key="inside_random", on_click=app_state.study_test_digit,
              args=(int(np.random.default_rng().integers(len(data.x_test))),))  # fmt: skip
truth = None
if source == "draw" and has_drawing:
    x, origin = drawn.x, app_state.draw_source()
    what = {"test": f"test digit #{origin[-1]}", "photo": f"the photo {origin[-1]}"}.get(origin[0], "your drawing")
    if origin[0] == "test":
        truth = int(data.y_test[origin[1]])
else:
    if source == "draw":
        st.info("Nothing on the Draw page yet (draw there, or load a test digit or a photo); a test digit meanwhile.")
    x, truth, what = data.x_test[index], int(data.y_test[index]), f"test digit #{index}"

shown = st.segmented_control("View", list(VIEWS), key="inside_view", format_func=VIEWS.get) or "digit"
epoch_words = f", after {view.epochs} epochs" if view.epochs is not None else ""
st.caption(f"{view.name}{epoch_words} · {hidden_size} hidden units, {activation} · {what}")
whole = read(params, activation, x)


def digit_view() -> None:
    """The digit through the net: the diagram, the units for and against, a unit's details, units off."""
    seen = app_state.inside_test(view, data)
    off = app_state.units_off(view.key)
    now = read(params, activation, x, off) if off else whole
    top = top_units(whole, whole.predicted, TOP)
    units = [int(u) for u in (*top.toward, *top.against)]
    selected = app_state.inside_unit()
    selected = selected if selected is not None and 0 <= selected < hidden_size else None
    left, right = st.columns([1.5, 1], gap="medium")
    left.plotly_chart(inside_charts.diagram_figure(x, whole, now, units, selected), key="inside_diagram",
                      on_select=partial(app_state.inside_pick_unit, "inside_diagram"), selection_mode="points",
                      config=NO_BAR)  # fmt: skip
    left.caption("Links from the digit are as thick as each unit's activation; links to a score as thick as the "
                 "unit's contribution to it (activation × weight), red up, blue down. Click a unit.")  # fmt: skip
    with right:
        said = f"The net reads **{whole.predicted}** ({whole.probs[whole.predicted]:.1%} sure)"
        st.markdown(said + (f"; the truth is {truth}." if truth is not None else "."))
        if off:
            st.markdown(f"With {len(off)} unit{'s' * (len(off) > 1)} off it reads **{now.predicted}** "
                        f"({now.probs[now.predicted]:.1%} sure).")  # fmt: skip
        st.multiselect("Switched off", list(range(hidden_size)), key=app_state.units_off_key(view.key),
                       format_func=lambda u: f"unit {u}", placeholder="no unit: the whole net",
                       help="Silence units: their activation becomes 0 for every digit")  # fmt: skip
        result = ablation(params, seen.hidden, seen.scores, seen.labels, off)
        points = round(100 * (result.silenced_accuracy - result.accuracy), 2)
        change = f"{points:+.2f} points" if off else None
        colour = "normal" if points else "off"  # no green arrow when the accuracy did not change
        with st.container(horizontal=True, gap="medium"):  # side by side where they fit, else one below the other
            st.metric("Test accuracy", f"{result.accuracy:.2%}", width="content")
            st.metric("With those units off", f"{result.silenced_accuracy:.2%}", delta=change, width="content",
                      delta_color=colour)  # fmt: skip
        if off:
            st.caption(f"{result.changed:,} of {len(seen.labels):,} test digits change their answer.")
    f1, f2 = st.columns(2, gap="large")
    for column, chosen, shares, kind in ((f1, top.toward, top.toward_share, "for"),
                                         (f2, top.against, top.against_share, "against")):  # fmt: skip
        column.markdown(f"**Units {kind} {whole.predicted}**: what each looks for (red excites it, blue inhibits it)")
        if len(chosen):
            captions = [f"{u} · {s:+.2f}" for u, s in zip(chosen, shares, strict=True)]
            column.plotly_chart(inside_charts.unit_weights_figure(params["W1"], chosen, captions),
                                key=f"inside_{kind}", on_select=partial(app_state.inside_pick_unit, f"inside_{kind}"),
                                selection_mode="points", config=NO_BAR)  # fmt: skip
        else:
            column.caption("None.")
    if selected is not None:
        unit_details(seen, selected, off)


def unit_details(seen, unit: int, off: list[int]) -> None:
    st.subheader(f"Unit {unit}")
    d1, d2 = st.columns([1, 2.2], gap="medium")
    d1.plotly_chart(inside_charts.unit_weights_figure(params["W1"], [unit], [f"weights of unit {unit}"], columns=1),
                    key="inside_unit_weights", config=NO_BAR)  # fmt: skip
    d1.caption(f"Activation on this digit {whole.hidden[unit]:.2f}; its share of the score of {whole.predicted}: "
               f"{whole.contributions[unit, whole.predicted]:+.2f}.")  # fmt: skip
    is_off = unit in off
    d1.button(f"Switch unit {unit} {'on' if is_off else 'off'}", key="inside_toggle_unit",
              on_click=app_state.toggle_unit_off, args=(view.key, unit), icon="🔌")  # fmt: skip
    best = most_exciting(seen.hidden, unit, 16)
    d2.markdown("**The test digits that excite it most** (label, activation)")
    d2.plotly_chart(charts.digits_figure(data.x_test[best], [f"{seen.labels[i]} · {seen.hidden[i, unit]:.1f}"
                                                             for i in best], columns=8),
                    key="inside_unit_digits", config=NO_BAR)  # fmt: skip


def map_view() -> None:
    """The test set on the hidden layer's first two principal components, the digit as a star;
    the dot clicked last beside it (the map takes four fifths of the width: fewer pixels for
    the browser to fill, and the picked digit in view without scrolling)."""
    seen = app_state.inside_test(view, data)
    projection = app_state.projection(view, data)
    star = projection.place(whole.hidden)[0]
    figure = app_state.figure(
        ("inside_map", view.key, tuple(np.round(star, 4)), what),
        lambda: inside_charts.map_figure(projection.points, seen.labels, seen.predictions, projection.explained,
                                         star, f"{what}: read as {whole.predicted}"),
    )  # fmt: skip
    left, right = st.columns([4, 1])
    left.plotly_chart(figure, key="inside_map", on_select=app_state.inside_pick_point, selection_mode="points")
    left.caption(f"Each dot is a test digit, placed by its {hidden_size} hidden activations seen along their two main "
                 f"directions ({projection.explained.sum():.0%} of the variance); crosses are the net's mistakes, the "
                 "star is the digit above. Click a dot to see it; double-click to zoom out.")  # fmt: skip
    picked = app_state.inside_map_digit()
    if picked is None or not 0 <= picked < len(seen.labels):
        right.markdown("**Click a dot** to see its digit here, look inside it, or open it on Misclassified.")
        return
    right.image(charts.digits_png(data.x_test[picked][None], [f"#{picked}"], columns=1, scale=4))
    right.markdown(f"Test digit **#{picked}**: a {seen.labels[picked]}, read as {seen.predictions[picked]}.")
    right.button("Look inside it", key="inside_map_study", on_click=app_state.study_test_digit, args=(picked,),
                 width="stretch")  # fmt: skip
    if right.button("Open on Misclassified", key="inside_map_open", width="stretch"):
        app_state.open_on_misclassified(picked)
        st.switch_page("pages/misclassified.py")


def calibration_view() -> None:
    """Reliability, the calibration error, confidence of right and wrong answers, and a threshold."""
    seen = app_state.inside_test(view, data)
    probs = seen.probs
    rel = reliability(probs, seen.labels)
    c1, c2 = st.columns(2, gap="medium")
    c1.plotly_chart(inside_charts.reliability_figure(rel), key="inside_reliability", config=NO_BAR)
    c1.caption(f"A calibrated net is right 80% of the time when it is 80% sure: its bars reach the diagonal. "
               f"Expected calibration error {rel.ece:.2%}: the gap, weighted by the digits in each bin.")  # fmt: skip
    c2.plotly_chart(inside_charts.confidence_histogram_figure(confidence_histograms(probs, seen.labels)),
                    key="inside_confidence", config=NO_BAR)  # fmt: skip
    threshold = st.slider("Answer only when at least this sure", 10, 100, 90, 1, format="%d%%",
                          key="inside_threshold") / 100  # fmt: skip
    point = at_threshold(probs, seen.labels, threshold)
    t1, t2 = st.columns([1.3, 1], gap="medium")
    t1.plotly_chart(inside_charts.coverage_figure(coverage_curve(probs, seen.labels), point), key="inside_coverage",
                    config=NO_BAR)  # fmt: skip
    with t2, st.container(horizontal=True, gap="medium"):
        st.metric("Answers", f"{point.coverage:.1%}", width="content")
        st.metric("Right among them", f"{point.accuracy:.2%}", width="content")
        st.metric('"I don\'t know"', f"{point.total - point.answered:,}", width="content")
    sure = whole.probs[whole.predicted]
    t2.markdown(f"On {what} it would say **{whole.predicted}** ({sure:.1%} sure)." if sure >= threshold else
                f"On {what} it would say **I don't know** (only {sure:.1%} sure of {whole.predicted}).")  # fmt: skip


def robustness_view() -> None:
    """Accuracy on spoiled test digits: sliders for each strength and the curves."""
    curves = app_state.robustness_curves(view, data)
    rows = app_state.robustness_sample(data)
    k1, k2, k3 = st.columns(3, gap="medium")
    chosen = {
        "noise": k1.slider("Noise σ", 0.0, 1.0, 0.3, 0.05, key="inside_noise"),
        "rotation": k2.slider("Rotation (degrees)", 0, 90, 30, 5, key="inside_rotation"),
        "thickness": k3.slider("Stroke (steps, − thinner, + thicker)", -2, 3, 1, 1, key="inside_thickness"),
    }
    accuracy, examples = {}, {}
    for kind, strength in chosen.items():
        accuracy[kind], *examples[kind] = app_state.spoiled_sample(view, data, kind, strength)
    st.plotly_chart(inside_charts.robustness_figure(list(curves.values()), chosen, accuracy), key="inside_robustness",
                    config=NO_BAR)  # fmt: skip
    st.caption(f"Accuracy on a fixed sample of {len(rows):,} test digits, spoiled (the noise is seeded: the same "
               "every time); the red dots are the strengths chosen above.")  # fmt: skip
    for column, (kind, (spoiled, predictions)) in zip((k1, k2, k3), examples.items(), strict=True):
        column.image(inside_charts.spoiled_png_grid(spoiled, columns=4), width="stretch")
        column.caption(f"{accuracy[kind]:.1%} right · read as {' '.join(str(p) for p in predictions)}")


{"digit": digit_view, "map": map_view, "calibration": calibration_view, "robustness": robustness_view}[shown]()
