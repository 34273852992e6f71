"""Widget helpers shared by the pages. Each `*_ui` function draws widgets and returns values."""

from __future__ import annotations

import streamlit as st

import app_state
from nets.config import ACTIVATIONS, INITS, LIMITS, LR_SCHEDULES, OPTIMIZERS, PRESETS, ConfigError, TrainConfig
from nets.data import DataError


def settings_ui(rows: int, disabled: bool = False) -> TrainConfig | None:
    """Every knob of TrainConfig, bound to the URL; returns the config or None (error shown)."""
    st.segmented_control(
        "Preset",
        list(PRESETS),
        key="train_preset",
        format_func={"seed": "seed (the notebook)", "fast": "fast", "best": "best"}.get,
        on_change=lambda: (
            st.session_state.get("train_preset") and app_state.apply_preset(st.session_state.train_preset)
        ),
        disabled=disabled,
        help="Load a recipe into the controls below: the notebook's, a fast default, the most accurate.",
    )
    # Defaults are the fast preset: a URL carries only what differs from it.
    q = dict(bind="query-params", disabled=disabled)
    f = PRESETS["fast"]
    v: dict = {}  # widget key -> chosen value; app_state.SETTING_KEYS names the config field of each
    c1, c2 = st.columns(2)
    v["train_hidden"] = c1.select_slider("Hidden units", app_state.HIDDEN_SIZES, f.hidden_size, key="train_hidden", **q)
    v["train_activation"] = c2.selectbox(
        "Activation", ACTIVATIONS, ACTIVATIONS.index(f.activation), key="train_activation", **q
    )
    v["train_init"] = c1.selectbox("Initialisation", INITS, INITS.index(f.init), key="train_init", **q)
    v["train_optimizer"] = c2.selectbox(
        "Optimiser", OPTIMIZERS, OPTIMIZERS.index(f.optimizer), key="train_optimizer", **q
    )
    v["train_lr"] = st.select_slider(
        "Learning rate (log scale)", app_state.LEARNING_RATES, f.learning_rate, key="train_lr",
        format_func=lambda x: f"{x:g}", **q,
    )  # fmt: skip
    c1, c2 = st.columns(2)
    v["train_schedule"] = c1.selectbox(
        "Schedule", LR_SCHEDULES, LR_SCHEDULES.index(f.lr_schedule), key="train_schedule", **q
    )
    momentum_off = disabled or v["train_optimizer"] != "momentum"
    v["train_momentum"] = c2.slider(
        "Momentum", 0.0, app_state.UI_MAX["train_momentum"], f.momentum, 0.01, key="train_momentum",
        **{**q, "disabled": momentum_off},
    )  # fmt: skip
    v["train_batch"] = c1.select_slider("Batch size", app_state.BATCH_SIZES, f.batch_size, key="train_batch", **q)
    v["train_epochs"] = c2.number_input(
        "Epochs", 1, app_state.UI_MAX["train_epochs"], f.epochs, key="train_epochs", **q
    )
    v["train_decay"] = c1.select_slider(
        "Weight decay (L2)", app_state.WEIGHT_DECAYS, f.weight_decay, key="train_decay",
        format_func=lambda x: f"{x:g}", **q,
    )  # fmt: skip
    shift_max = int(LIMITS["augment_shift"][1])
    v["train_shift"] = c2.slider("Shift digits by up to (px)", 0, shift_max, f.augment_shift, key="train_shift", **q)
    v["train_shuffle"] = c1.toggle(
        "Shuffle", f.shuffle, key="train_shuffle", help="A fresh order of the digits every epoch", **q
    )
    v["train_seed"] = c2.number_input("Seed", 0, int(LIMITS["seed"][1]), f.seed, key="train_seed", **q)
    try:
        config = app_state.settings_config(v)
    except ConfigError as exc:
        st.error(f"These settings cannot run: {exc}")
        return None
    if config.batch_size > rows:
        st.error(f"Batch size {config.batch_size} is larger than the {rows:,} training images.")
        return None
    return config


def require_data():
    """MNIST for this page; while it is missing, the setup screen instead (and the page stops).

    Every page calls this, not only the frame: a page can run without dashboard.py (the
    first request of a fresh server to a page's URL, where Streamlit's legacy pages/ mode
    runs the page file directly).
    """
    data = app_state.data()
    if data is None:
        data_setup_ui()
    return data


def data_setup_ui() -> None:
    """Shown while MNIST is missing: download it with a progress bar, or take uploaded files."""
    st.title("MNIST dashboard")
    if app_state.download_allowed() and not app_state.download_failed():
        bar = st.progress(0.0, text="MNIST is not on this machine yet: downloading it (about 11 MB)…")

        def progress(name: str, done: int, total: int | None) -> None:
            if total:
                bar.progress(
                    min(done / total, 1.0), text=f"Downloading {name}: {done / 1e6:.1f} of {total / 1e6:.1f} MB"
                )

        if app_state.download_data(progress) is None:
            st.rerun()
    st.error(f"MNIST is not available: {app_state.data_error()}")
    st.markdown(
        "Upload the four MNIST files (`train-images-idx3-ubyte`, `train-labels-idx1-ubyte`, "
        "`t10k-images-idx3-ubyte`, `t10k-labels-idx1-ubyte`, raw or `.gz`); they are checked and cached."
    )
    uploads = st.file_uploader("MNIST files", accept_multiple_files=True, key="home_data_upload")
    if uploads and st.button("Use these files", type="primary"):
        try:
            installed = app_state.install_uploads({f.name: f.getvalue() for f in uploads})
        except DataError as exc:
            st.error(str(exc))
        else:
            st.success(f"Cached {', '.join(installed)}.")
            st.rerun()
    if app_state.download_allowed() and st.button("Try the download again"):
        app_state.clear_download_error()
        st.rerun()
    st.stop()
