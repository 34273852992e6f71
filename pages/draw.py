"""Draw: draw a digit, watch the net read it, even while it trains."""

import streamlit as st
from streamlit_drawable_canvas import st_canvas

import app_state
import charts
import draw_inputs
import frame
import replay_ui
from nets.canvas import drawing_json, png_pixels
from nets.preprocess import Preprocessed, preprocess

SIDE = 280  # the canvas, in pixels; the PNG it sends must be exactly this size

data = frame.page_setup()
ws = app_state.workspace()

st.title("Draw")
records = ws.store.runs()  # one listing of the store for this page draw
choices = ws.model_choices(records)
labels = app_state.model_labels(ws, choices, records)
choice = st.selectbox("Model predicting", choices, index=app_state.choice_index("draw_choice", choices),
                      key="draw_model", format_func=labels.get,
                      on_change=app_state.remember_choice, args=("draw_choice", "draw_model"),
                      help="A run training now predicts with its latest weights, refreshed every second.")  # fmt: skip
following_live = ws.model(choice) is not None and ws.model(choice).live

# The canvas is 280 px wide and is clipped, not scaled, in a narrower column: keep its column at least that wide.
st.html("<style>div[data-testid=stColumn]:has(.st-key-draw_pad){min-width:300px}</style>")
pad, right = st.columns([1, 1.6], gap="large")
with pad, st.container(key="draw_pad"):
    st.caption("Draw one digit, large, in the black square. Undo, redo and reset are on the canvas's toolbar.")
    brush = st.slider("Brush", 8, 32, 18, key="draw_brush")
    try:  # the canvas's value comes from the browser: a malformed one (a modified client) is dropped, not trusted
        result = st_canvas(
            stroke_width=brush, stroke_color="#FFFFFF", background_color="#000000", height=SIDE, width=SIDE,
            drawing_mode="freedraw", return_image_data=True, initial_drawing=app_state.drawing(),
            key=app_state.canvas_key(),
        )  # fmt: skip
        image, drawing = png_pixels(result.image_bytes, SIDE, SIDE), drawing_json(result.json_data)
    except Exception:  # noqa: BLE001 (the component itself raises on some malformed values; all mean the same)
        app_state.clear_drawing()  # the next run draws a fresh canvas, without the bad value
        st.warning("The canvas sent a drawing this page cannot read; it was cleared. Draw again.")
        image = drawing = None
    app_state.remember_drawing(drawing, preprocess(image) if image is not None else None)
    st.button("Clear", on_click=app_state.clear_drawing, key="draw_clear", icon="🧹")
    draw_inputs.load_digit_ui(data)

drawn: Preprocessed = app_state.drawn_input() or Preprocessed(None)


@st.fragment(run_every=1.0 if following_live else None)
def prediction() -> None:
    """The net's reading of the drawing; re-scored every second while the model trains.
    The model is looked up by its stable choice each time, so it follows the run's newest weights."""
    current = ws.model(choice) or ws.current_model()
    if following_live and not current.live:
        st.rerun()  # the run just ended: one full run stops the ticking
    if drawn.empty:
        st.info("Draw a digit: the net's reading appears here after every stroke.")
        return
    current = replay_ui.epoch_replay_ui(ws, current, "draw")  # "when did it learn to read this?"
    probs = app_state.drawing_probabilities(current, drawn.x)
    guess = int(probs.argmax())
    c1, c2 = st.columns([1, 2])
    c1.caption("The net reads")
    c1.markdown(
        f"<div class='draw-guess' style='font-size:6.5rem;font-weight:700;line-height:1'>{guess}</div>",
        unsafe_allow_html=True,
    )  # an int of our own making: nothing from the user is rendered as HTML
    c1.caption(f"{probs[guess]:.1%} sure")
    if current.live:
        c1.caption(f"{current.name}, live: weights after {current.epochs} of {current.config.epochs} epochs.")
    elif current.run_id is not None and current.epochs is not None:
        c1.caption(f"{current.name}: weights after {current.epochs} epoch{'' if current.epochs == 1 else 's'}.")
    c2.plotly_chart(charts.probability_figure(probs, None, guess), key="draw_probs", config={"displayModeBar": False})


with right:
    prediction()

if not drawn.empty:
    what, why = st.columns([1, 1.6], gap="large")
    what.markdown("**What the net sees** (28×28, as MNIST made its digits)")
    what.plotly_chart(charts.input_figure(drawn.x), key="draw_input", width="content", config={"displayModeBar": False})
    with why:
        st.markdown("**Closest training digits** (in pixel space), with their labels")
        neighbours = app_state.nearest_training_digits(data, drawn.x)
        labels_ = [str(data.y_train[i]) for i in neighbours]
        st.plotly_chart(charts.digits_figure(data.x_train[neighbours], labels_, columns=8), key="draw_neighbours",
                        config={"displayModeBar": False})  # fmt: skip
        low, high = app_state.mnist_stroke_range(data)
        width = drawn.stroke_width
        advice = "thinner" if width > high else "thicker"
        if not low * 0.75 <= width <= high * 1.25:
            st.warning(f"Your stroke is {width:.1f} px wide once scaled to MNIST's size; MNIST's digits are "
                       f"{low:.1f}-{high:.1f} px. A {advice} brush reads more like the training digits.")  # fmt: skip
        else:
            st.caption(f"Stroke width {width:.1f} px, within MNIST's usual {low:.1f}-{high:.1f} px.")
