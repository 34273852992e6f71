"""Widget helpers shared by the pages. Each `*_ui` function draws widgets and returns values."""

from __future__ import annotations

import re

import streamlit as st

import app_state
from nets.config import ACTIVATIONS, INITS, LIMITS, LR_SCHEDULES, OPTIMIZERS, PRESETS, ConfigError, TrainConfig
from nets.data import FILE_NAMES, TRIED, DataError, default_cache_dir, find_files

PRESET_HELP = (
    "Load a recipe into the controls: **seed**, the notebook's (95%, 50 epochs of plain SGD); "
    "**fast**, the default (about 98% in 5 epochs); **best**, the most accurate in 20 epochs (about 98.8%); "
    "**record**, best for 150 epochs on elastically distorted digits (99.27%, minutes)."
)
MIN_CONTROL_WIDTH = 170  # px: below two of these side by side, the controls stack in one column


def settings_ui(rows: int, disabled: bool = False) -> TrainConfig | None:
    """Every knob of TrainConfig, bound to the URL; returns the config or None (error shown).

    The knobs people turn first are in view; the rest sit in the "More settings" popover,
    summed up in one line below it. Controls stand in one column unless there is room for two at
    MIN_CONTROL_WIDTH (a label never breaks mid-word, a dropdown always shows its value).
    """
    # Three short names in one row down to a ~110 px column, with a few pixels to spare: Streamlit's 16 px of padding
    # each side would wrap them 2 + 1 at 1024 px.
    app_state.hold_applied_settings(disabled)
    st.html("<style>.st-key-train_preset button[data-variant=segmented_control]{padding-inline:.25rem}</style>")
    st.segmented_control(
        "Preset",
        list(PRESETS),
        key="train_preset",
        width="stretch",
        on_change=lambda: app_state.preset_choice() and app_state.apply_preset(app_state.preset_choice()),
        disabled=disabled,
        help=PRESET_HELP,
    )
    # Defaults are the fast preset: a URL carries only what differs from it.
    q = dict(bind="query-params", disabled=disabled)
    f = PRESETS["fast"]
    v: dict = {}  # widget key -> chosen value; app_state.SETTING_KEYS names the config field of each
    with st.grid(2, min_column_width=MIN_CONTROL_WIDTH, gap="small"):
        v["train_hidden"] = st.select_slider(
            "Hidden units", app_state.HIDDEN_SIZES, f.hidden_size, key="train_hidden", **q
        )
        v["train_optimizer"] = st.selectbox(
            "Optimiser", OPTIMIZERS, OPTIMIZERS.index(f.optimizer), key="train_optimizer", **q
        )
        v["train_lr"] = st.select_slider(
            "Learning rate", app_state.LEARNING_RATES, f.learning_rate, key="train_lr",
            format_func=lambda x: f"{x:g}", help="Steps on a log scale, from 0.0001 to 10", **q,
        )  # fmt: skip
        v["train_batch"] = st.select_slider("Batch size", app_state.BATCH_SIZES, f.batch_size, key="train_batch", **q)
        v["train_epochs"] = st.number_input(
            "Epochs", 1, app_state.UI_MAX["train_epochs"], f.epochs, key="train_epochs", **q
        )
    # A popover, not an expander: it floats at its own width, two controls a row even
    # when the settings column is narrow.
    more = st.popover("More settings", width="stretch", wrap=True)
    with more, st.container(width=2 * MIN_CONTROL_WIDTH + 40), st.grid(2, min_column_width=MIN_CONTROL_WIDTH):
        v["train_activation"] = st.selectbox(
            "Activation", ACTIVATIONS, ACTIVATIONS.index(f.activation), key="train_activation", **q
        )
        v["train_init"] = st.selectbox(
            "Initialisation", INITS, INITS.index(f.init), key="train_init",
            help="How the weights start: he, xavier, or std (0.01 × a normal draw, the notebook's)", **q,
        )  # fmt: skip
        v["train_schedule"] = st.selectbox(
            "Schedule", LR_SCHEDULES, LR_SCHEDULES.index(f.lr_schedule), key="train_schedule",
            help="How the learning rate changes over the epochs", **q,
        )  # fmt: skip
        momentum_off = disabled or v["train_optimizer"] != "momentum"
        v["train_momentum"] = st.slider(
            "Momentum", 0.0, app_state.UI_MAX["train_momentum"], f.momentum, 0.01, key="train_momentum",
            help="Used by the momentum optimiser only", **{**q, "disabled": momentum_off},
        )  # fmt: skip
        v["train_decay"] = st.select_slider(
            "Weight decay", app_state.WEIGHT_DECAYS, f.weight_decay, key="train_decay",
            format_func=lambda x: f"{x:g}", help="L2 penalty on the weights", **q,
        )  # fmt: skip
        v["train_seed"] = st.number_input("Seed", 0, int(LIMITS["seed"][1]), f.seed, key="train_seed", **q)
    # How the training digits are fed, in a popover of its own: in one with the settings
    # above, the last row ran off a 700 px window.
    digits = st.popover("Training data", width="stretch")
    with digits, st.container(width=2 * MIN_CONTROL_WIDTH + 40), st.grid(2, min_column_width=MIN_CONTROL_WIDTH):
        v["train_shuffle"] = st.toggle(
            "Shuffle", f.shuffle, key="train_shuffle", help="A fresh order of the digits every epoch", **q
        )
        shift_max = int(LIMITS["augment_shift"][1])
        v["train_shift"] = st.slider(
            "Shift (px)", 0, shift_max, f.augment_shift, key="train_shift",
            help="Shift each training digit by up to this many pixels, a new shift every epoch", **q,
        )  # fmt: skip
        v["train_elastic"] = st.slider(
            "Elastic (α)", 0.0, LIMITS["augment_elastic"][1], f.augment_elastic, 1.0, "%.0f", key="train_elastic",
            help="Bend each training digit like a rubber sheet, this strongly (34 in the record preset; 0 = off)", **q,
        )  # fmt: skip
        v["train_rotate"] = st.slider(
            "Rotate (°)", 0.0, LIMITS["augment_rotate"][1], f.augment_rotate, 1.0, "%.0f", key="train_rotate",
            help="Turn each training digit by up to this many degrees either way", **q,
        )  # fmt: skip
        v["train_scale"] = st.slider(
            "Scale (±)", 0.0, LIMITS["augment_scale"][1], f.augment_scale, 0.01, key="train_scale",
            help="Grow or shrink each training digit by a factor within 1 ± this", **q,
        )  # fmt: skip
    st.caption(more_summary(v))
    try:
        config = app_state.settings_config(v)
    except ConfigError as exc:
        st.error(f"These settings cannot run: {exc}")
        return None
    if config.batch_size > rows:
        st.error(f"Batch size {config.batch_size} is larger than the {rows:,} training images.")
        return None
    return config


def stop_rules_ui(disabled: bool = False) -> None:
    """The stop rules, chosen before Start (0 switches a rule off); app_state.stop_rules() reads them."""
    with st.expander("Stop rules"), st.grid(2, min_column_width=MIN_CONTROL_WIDTH, gap="small"):
        st.number_input("Patience (epochs)", 0, 1000, 0, key="train_patience", disabled=disabled,
                        help="Stop when the validation loss has not improved for this many epochs, "
                             "and keep the best epoch's weights (0 = off)")  # fmt: skip
        st.number_input("Time budget (s)", 0, 86_400, 0, key="train_time_budget", disabled=disabled,
                        help="Stop after this many seconds of training (0 = off)")  # fmt: skip
        st.number_input("Target val acc (%)", 0.0, 100.0, 0.0, 0.5, key="train_target_acc", disabled=disabled,
                        help="Stop once the validation accuracy reaches this (0 = off)")  # fmt: skip


def more_summary(v: dict) -> str:
    """The values inside "More settings" in one line, so that a closed popover hides none."""
    parts = [
        v["train_activation"],
        f"{v['train_init']} init",
        f"{v['train_schedule']} rate",
        *([f"momentum {v['train_momentum']:g}"] if v["train_optimizer"] == "momentum" else []),
        f"decay {v['train_decay']:g}" if v["train_decay"] else "no decay",
        f"shift {v['train_shift']} px" if v["train_shift"] else "no shift",
        *([f"elastic {v['train_elastic']:g}"] if v["train_elastic"] else []),
        *([f"rotate {v['train_rotate']:g}°"] if v["train_rotate"] else []),
        *([f"scale ±{v['train_scale']:g}"] if v["train_scale"] else []),
        "shuffled" if v["train_shuffle"] else "not shuffled",
        f"seed {v['train_seed']}",
    ]
    return " · ".join(parts)


def require_data():
    """MNIST for this page; while it is missing, the setup screen instead (and the page stops).

    Every page calls this, not only the frame: a page can run without dashboard.py (the
    first request of a fresh server to a page's URL, where Streamlit's legacy pages/ mode
    runs the page file directly).
    """
    data = app_state.data()
    if data is None:
        data_setup_ui()
    elif note := app_state.pop_installed_note():
        st.success(note)  # once, above the first page drawn with the uploaded files
    return data


def download_failure(message: str) -> tuple[str, list[str]] | None:
    """(what to say, the attempts) for a failed download's one-line message, else None.

    The message is nets.data.download_failure's: "could not download NAME: WHY. Put ...
    Tried: URL: REASON; URL: REASON".
    """
    match = re.fullmatch(r"could not download (\S+): (.+?)\. Put .+?" + re.escape(TRIED) + r"(.*)", message)
    if match is None:
        return None
    name, why, tried = match.groups()
    return f"could not download {name}, {'as ' if 'no network' in why else ''}{why}", tried.split("; ")


def rerun_when_download_ends() -> None:
    """Ticks while another session downloads MNIST; when it is done (or failed), the whole
    page runs again: it finds the data, or tries the download itself and says why not."""
    if not app_state.download_elsewhere():
        st.rerun(scope="app")


def data_setup_ui() -> None:
    """Shown while MNIST is missing: download it with a progress bar, or take uploaded files.

    When the download fails, one sentence says why and the three ways to get the files; what
    each mirror answered is behind an expander.
    """
    st.title("MNIST dashboard")
    if note := app_state.pop_installed_note():
        st.success(note)
    if app_state.download_allowed() and not app_state.download_failed():
        slot = st.empty()  # emptied when the download ends: no stale caption or bar above an error
        bar = slot.progress(0.0, text="MNIST is not on this machine yet: downloading it (about 11 MB)…")

        def progress(name: str, done: int, total: int | None) -> None:
            if total:
                bar.progress(
                    min(done / total, 1.0), text=f"Downloading {name}: {done / 1e6:.1f} of {total / 1e6:.1f} MB"
                )

        failed = app_state.download_data(progress)
        slot.empty()
        if failed is None:
            st.rerun()
        if not app_state.download_failed():  # another session downloads it: wait for that one, without blocking
            st.info(f"{failed[0].upper()}{failed[1:]}.")
            st.fragment(rerun_when_download_ends, run_every=2.0)()
            st.stop()
    message = app_state.data_error()
    download = download_failure(message)
    if download is None:
        st.error(f"MNIST is not available: {message}")
    else:
        why, attempts = download
        st.error(
            f"MNIST is not available: {why}; set `MNIST_DIR` to a folder holding the four files and restart, "
            f"upload them below, or copy them into `{default_cache_dir()}`."
        )
        with st.expander("Details: what each download mirror answered"):
            st.markdown("\n".join(f"- `{attempt.split(': ', 1)[0]}`: {attempt.split(': ', 1)[-1]}"
                                   for attempt in attempts))  # fmt: skip
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
            cache = default_cache_dir()
            missing = [name for name in FILE_NAMES if name not in find_files(cache)]
            still = f"; still missing: {', '.join(missing)}" if missing else ""
            app_state.set_installed_note(f"Checked and cached {', '.join(installed)} in {cache}{still}.")
            st.rerun()
    if app_state.download_allowed() and st.button("Try the download again"):
        app_state.clear_download_error()
        st.rerun()
    st.stop()
