"""Overview: what the net achieves, where to go next, and the data set at a glance."""

import streamlit as st

import app_state
import frame
import scenarios_ui
from nets.config import PRESETS
from nets.workspace import PRETRAINED

data = frame.page_setup()
ws = app_state.workspace()
shipped = ws.model(PRETRAINED)

st.title("MNIST, a two-layer net, and you")
if shipped is not None:
    # Measured here, on the test digits loaded (the Misclassified page reuses it): the
    # file's own figure would be wrong for any other test set.
    ev = app_state.evaluation(shipped, data)
    hidden = shipped.config.hidden_size
    st.subheader(f"A 784-{hidden}-10 net reads {ev.accuracy:.2%} of the {len(ev.labels):,} test digits right")
    preset = next((name for name, config in PRESETS.items() if config == shipped.config), None)
    recipe = f" with the **{preset}** preset" if preset else ""
    epochs = f"{shipped.epochs} epoch{'s' if shipped.epochs != 1 else ''}" if shipped.epochs else "training"
    st.caption(f"That is the model shipped with the dashboard: {epochs}{recipe}. Train your own and compare.")
st.markdown(
    "A neural network with one hidden layer learns to read handwritten digits, written in plain "
    "NumPy so that every step of it can be inspected. **Train** it live and compare settings, see "
    "the digits it gets wrong, and draw your own."
)

st.markdown("**Where to go next**")
st.page_link("pages/train.py", label="Train a network: the notebook's recipe reaches 95%, the fast one 98% in seconds",
             icon="📈")  # fmt: skip
st.page_link("pages/misclassified.py", label="See the digits it gets wrong, and which pixels misled it",
             icon="🔍")  # fmt: skip
st.page_link("pages/draw.py", label="Draw a digit and watch the net read it, even while it trains",
             icon="✏️")  # fmt: skip
st.page_link("pages/compare.py", label="Compare every run: settings, curves and results side by side", icon="📊")

st.subheader("Guided scenarios: one button each, and what the runs measured")
st.caption("Each trains a baseline and one change on a subset of the digits (seconds here) and draws both on Train.")
if scenarios_ui.cards_ui(ws, data, ws.store.runs(), prefix="home", columns=3):
    st.switch_page("pages/train.py")  # watch it train, over its pinned baseline

st.subheader("The data: 28×28 grey-scale digits, with their labels")
c1, c2, c3 = st.columns(3)
c1.metric("Training images", f"{len(data.x_train):,}")
c2.metric("Validation images", f"{len(data.x_val):,}")
c3.metric("Test images", f"{len(data.x_test):,}")
pictures = app_state.data_pictures(data)
with st.container(key="home_samples"):  # a picture: the page draws before plotly.js has loaded
    st.image(pictures.samples, width="stretch", output_format="PNG")
left, right = st.columns(2)
left.plotly_chart(pictures.train_counts, key="home_train_counts")
right.plotly_chart(pictures.test_counts, key="home_test_counts")
