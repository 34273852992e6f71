"""The Draw page's other inputs: a test digit or a photo put into the net's input instead of a drawing."""

from __future__ import annotations

import numpy as np
import streamlit as st

import app_state
from nets.data import Mnist
from nets.preprocess import Preprocessed, stroke_width


def load_test_digit(data: Mnist, index: int | None = None) -> None:
    """Put test digit `index` (None: a random one) into the net's input; a button's callback."""
    if index is None:
        index = int(np.random.default_rng().integers(len(data.x_test)))
    x = data.x_test[int(index)]
    app_state.load_draw_input(Preprocessed(x, stroke_width(x)), ("test", int(index)))


def load_digit_ui(data: Mnist) -> None:
    """Below the canvas: load a test digit or a photo, and say what the net's input holds."""
    source = app_state.draw_source()
    with st.expander("Or load a test digit or a photo", expanded=source[0] != "drawing"):
        with st.container(horizontal=True, vertical_alignment="bottom", gap="small"):
            index = st.number_input("Test digit #", 0, len(data.x_test) - 1, key="draw_test_index", step=1, width=130)
            st.button("Load", key="draw_load_test", on_click=load_test_digit, args=(data, int(index)))
            st.button("Random", key="draw_random_test", on_click=load_test_digit, args=(data,))
        st.file_uploader(
            "A photo of a handwritten digit (PNG or JPEG, at most 10 MB)", type=["png", "jpg", "jpeg"],
            key="draw_photo", on_change=app_state.take_photo_upload,
            help="Dark ink on light paper or the reverse: it is made grey, thresholded, cropped and centred as MNIST "
            "made its digits.",
        )  # fmt: skip
    if (message := app_state.pop_photo_message()) is not None:
        st.error(message)
    if source[0] == "test":
        st.caption(f"In the net's input: test digit #{source[1]}, a {data.y_test[source[1]]}. Draw to replace it.")
    elif source[0] == "photo":
        st.caption(f"In the net's input: the photo {source[1]}. Draw to replace it.")
