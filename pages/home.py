"""Overview: what this is, the data set at a glance, and where to go next."""

import numpy as np
import streamlit as st

import charts
import frame

data = frame.page_setup()

st.title("MNIST, a two-layer net, and you")
st.markdown(
    "A neural network with one hidden layer learns to read handwritten digits, written in plain "
    "NumPy so that every step of it can be inspected. **Train** it live and compare settings, see "
    "the digits it gets wrong, and draw your own."
)
c1, c2, c3 = st.columns(3)
c1.metric("Training images", f"{len(data.x_train):,}")
c2.metric("Validation images", f"{len(data.x_val):,}")
c3.metric("Test images", f"{len(data.x_test):,}")

st.subheader("The data: 28×28 grey-scale digits, with their labels")
sample = np.random.default_rng(0).choice(len(data.x_train), 30, replace=False)  # the same sample every time
st.plotly_chart(
    charts.digits_figure(data.x_train[sample], [str(data.y_train[i]) for i in sample]),
    key="home_samples",
    config={"displayModeBar": False},
)
left, right = st.columns(2)
left.plotly_chart(charts.class_counts_figure(data.y_train, "Training digits per class"), key="home_train_counts")
right.plotly_chart(charts.class_counts_figure(data.y_test, "Test digits per class"), key="home_test_counts")

st.subheader("Where to go next")
st.page_link("pages/train.py", label="Train a network: the notebook's recipe reaches 95%, the fast one 98% in seconds",
             icon="📈")  # fmt: skip
st.page_link("pages/misclassified.py", label="See the digits it gets wrong, and which pixels misled it",
             icon="🔍")  # fmt: skip
st.page_link("pages/draw.py", label="Draw a digit and watch the net read it, even while it trains",
             icon="✏️")  # fmt: skip
