"""The dashboard's state: the only module that touches st.session_state and Streamlit's caches.

- MNIST loads once per server process (`st.cache_resource`, global) and is shared
  read-only by every session: its arrays are not writeable.
- Each session owns one `Workspace` (its runs and at most one live training), cached with
  scope="session": when the session ends (tab closed, page reloaded), Streamlit releases
  it and `Workspace.shutdown` stops its training thread.
- Session keys are read and written only through the small functions below.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import streamlit as st

from nets.checkpoint import LoadedModel, load_model
from nets.config import PRESETS, TrainConfig
from nets.data import (
    FILE_NAMES,
    DataError,
    Mnist,
    default_cache_dir,
    download_mnist,
    find_files,
    install_files,
    load_mnist,
)
from nets.evaluation import evaluate
from nets.preprocess import nearest, squared_norms, typical_stroke_widths
from nets.training import estimate_epoch_seconds
from nets.workspace import ModelView, Workspace

DOWNLOAD_ERROR = "data_download_error"  # why this session's download failed (str), or absent
LOAD_ERROR = "data_load_error"  # why the last attempt to load MNIST failed (str), or absent
SELECTED_RUNS = "train_selected_runs"  # run ids whose curves are overlaid


def pages() -> list:
    """The app's pages, in navigation order (dashboard.py routes over these)."""
    return [
        st.Page("pages/home.py", title="Overview", icon="🏠", default=True),
        st.Page("pages/train.py", title="Train", icon="📈"),
        st.Page("pages/misclassified.py", title="Misclassified", icon="🔍"),
        st.Page("pages/draw.py", title="Draw", icon="✏️"),
    ]


def init() -> None:
    """Idempotent: every page calls it, so each page also works when opened first."""
    st.session_state.setdefault(SELECTED_RUNS, [])


# --- data --------------------------------------------------------------------------------------


@st.cache_resource(show_spinner="Loading MNIST…")
def _shared_data() -> Mnist:
    return load_mnist(download=False)


def data() -> Mnist | None:
    """MNIST, loaded once per process; None when unavailable (`data_error()` says why)."""
    try:
        mnist = _shared_data()
    except DataError as exc:
        st.session_state[LOAD_ERROR] = str(exc)  # kept, so that saying why does not read the disk again
        return None
    st.session_state.pop(LOAD_ERROR, None)
    return mnist


def data_error() -> str:
    """Why MNIST is unavailable: this session's failed download, else the last load's error."""
    return st.session_state.get(DOWNLOAD_ERROR) or st.session_state.get(LOAD_ERROR, "")


def download_failed() -> bool:
    return DOWNLOAD_ERROR in st.session_state


def clear_download_error() -> None:
    st.session_state.pop(DOWNLOAD_ERROR, None)


def download_allowed() -> bool:
    """A download makes sense only when no directory was named and the cache is incomplete."""
    return not os.environ.get("MNIST_DIR") and len(find_files(default_cache_dir())) < len(FILE_NAMES)


def download_data(progress: Callable[[str, int, int | None], None]) -> str | None:
    """Download MNIST into the cache; None on success, else the one-line reason."""
    try:
        download_mnist(default_cache_dir(), progress=progress)
    except DataError as exc:
        st.session_state[DOWNLOAD_ERROR] = str(exc)
        return str(exc)
    _shared_data.clear()
    return None


def install_uploads(files: dict[str, bytes]) -> list[str]:
    """Check uploaded IDX files and cache them (raises DataError, caching nothing, if bad)."""
    installed = install_files(files)
    _shared_data.clear()
    return installed


# --- the session's runs ----------------------------------------------------------------------


@st.cache_resource(scope="session", on_release=Workspace.shutdown, show_spinner=False)
def workspace() -> Workspace:
    """This session's Workspace; released (its training stopped) when the session ends."""
    return Workspace()


def mark_live(run_id: int | None) -> bool:
    """Remember which run the page last saw training; True when that just changed to None.

    The live view then asks for one full rerun, so the run table and the controls catch up.
    """
    previous = st.session_state.get("train_live_run")
    st.session_state["train_live_run"] = run_id
    return previous is not None and run_id is None


def new_upload(file_id: str) -> bool:
    """True the first time this session sees an uploaded file (reruns resend the same file)."""
    seen = st.session_state.setdefault("train_seen_uploads", set())
    if file_id in seen:
        return False
    seen.add(file_id)
    return True


def figure(signature: tuple, build, every: float = 0.0):
    """A figure built once per signature, per chart kind: a live view that reruns every
    second re-sends the same object until its data really changes (the browser redraws
    only what changed).

    With `every`, a signature that differs only in its last item (a version of the same
    subject) is rebuilt at most once per `every` seconds.
    """
    cache = st.session_state.setdefault("figure_cache", {})
    kind, now = signature[0], time.monotonic()
    old = cache.get(kind)
    if old is None or (old[0] != signature and (old[0][:-1] != signature[:-1] or now - old[2] >= every)):
        cache[kind] = (signature, build(), now)
    return cache[kind][1]


def evaluation(view, data: Mnist):
    """The test-set evaluation of a model view, computed once per model version.

    Kept per session for the few latest versions (a training run makes new ones).
    """
    cache = st.session_state.setdefault("evaluations", {})
    if view.key not in cache:
        cache[view.key] = evaluate(view.net(), data.x_test, data.y_test)
        for stale in list(cache)[:-3]:
            del cache[stale]
    return cache[view.key]


PRETRAINED = Path(__file__).resolve().parent / "models" / "pretrained.npz"


@st.cache_resource(scope="session", show_spinner=False)
def _pretrained() -> LoadedModel:
    """The shipped model, one copy per session: a net's layers cache their last input,
    so two users must not predict through the same object at once."""
    return load_model(PRETRAINED)


def pretrained_view() -> ModelView:
    loaded = _pretrained()
    acc = loaded.meta.get("test_acc")
    label = "pretrained (shipped" + (f", {acc:.2%} test accuracy)" if acc else ")")
    return ModelView(key=("pretrained",), label=label, run=None, model=loaded.net)


@st.cache_resource(show_spinner=False)
def _training_norms(_data: Mnist, source: str) -> np.ndarray:
    return squared_norms(_data.x_train)


def nearest_training_digits(data: Mnist, x: np.ndarray, k: int = 8) -> np.ndarray:
    """The k training digits closest to x in pixel space (norms computed once per process)."""
    return nearest(x, data.x_train, _training_norms(data, data.source), k)


@st.cache_resource(show_spinner=False)
def _stroke_range(_data: Mnist, source: str) -> tuple[float, float]:
    return typical_stroke_widths(_data.x_train)


def mnist_stroke_range(data: Mnist) -> tuple[float, float]:
    """MNIST's typical stroke widths (5th, 95th percentile), measured once per process."""
    return _stroke_range(data, data.source)


def canvas_key() -> str:
    """The drawing canvas's key; a new one clears the canvas."""
    return f"draw_canvas_{st.session_state.setdefault('draw_canvas_generation', 0)}"


def clear_drawing() -> None:
    st.session_state["draw_canvas_generation"] = st.session_state.get("draw_canvas_generation", 0) + 1
    st.session_state.pop("draw_drawing", None)
    st.session_state.pop("draw_input", None)


def drawing() -> dict | None:
    """The drawing as the canvas last sent it (Fabric.js JSON), to restore it on return."""
    return st.session_state.get("draw_drawing")


def remember_drawing(json_data: dict | None, processed) -> None:
    if json_data is not None:
        st.session_state["draw_drawing"] = json_data
    if processed is not None:
        st.session_state["draw_input"] = processed


def drawn_input():
    """The last preprocessed drawing (survives a return to the page before the next stroke)."""
    return st.session_state.get("draw_input")


def selected_run_ids() -> list[int]:
    return list(st.session_state.get(SELECTED_RUNS, []))


def set_selected_run_ids(run_ids: list[int]) -> None:
    st.session_state[SELECTED_RUNS] = list(run_ids)


# --- the Train page's settings -----------------------------------------------------------------

# Widget key -> TrainConfig field. The keys double as URL query parameters.
SETTING_KEYS = {
    "train_hidden": "hidden_size",
    "train_activation": "activation",
    "train_init": "init",
    "train_optimizer": "optimizer",
    "train_lr": "learning_rate",
    "train_schedule": "lr_schedule",
    "train_momentum": "momentum",
    "train_decay": "weight_decay",
    "train_batch": "batch_size",
    "train_epochs": "epochs",
    "train_shuffle": "shuffle",
    "train_shift": "augment_shift",
    "train_seed": "seed",
}


def settings_config(values: dict | None = None) -> TrainConfig:
    """The config of the Train page's controls: `values` by widget key, or (for a callback,
    which runs before the page draws them) the values they hold now. Raises ConfigError
    for values that cannot run."""
    values = st.session_state if values is None else values
    return TrainConfig(**{name: values[key] for key, name in SETTING_KEYS.items()})


def set_train_error(message: str) -> None:
    st.session_state["train_error"] = message


def pop_train_error() -> str | None:
    """The message of a refused Start, once."""
    return st.session_state.pop("train_error", None)


def apply_settings(config: TrainConfig) -> None:
    """Put a config's values into the Train page's widgets (a preset, or a run's settings).

    A value a control cannot show (an uploaded model's learning rate of 0.003, say) is
    snapped to the nearest choice.
    """
    for key, name in SETTING_KEYS.items():
        value = getattr(config, name)
        if key in CHOICES:
            value = nearest_choice(CHOICES[key], value)
        elif key in UI_MAX:
            value = min(value, UI_MAX[key])
        st.session_state[key] = value


# The controls' choices, log-spaced where a knob is explored by factors (learning rate).
# Up to the engine's limit of 10, so that people can watch a run diverge, and learn why.
LEARNING_RATES = (1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)
HIDDEN_SIZES = (16, 32, 64, 100, 128, 200, 256, 300, 400, 512, 800, 1024, 2048)
BATCH_SIZES = (1, 8, 16, 32, 50, 64, 100, 128, 200, 256, 500, 1000, 2000, 5000)
WEIGHT_DECAYS = (0.0, 1e-5, 1e-4, 5e-4, 1e-3, 1e-2)
CHOICES = {
    "train_lr": LEARNING_RATES,
    "train_hidden": HIDDEN_SIZES,
    "train_batch": BATCH_SIZES,
    "train_decay": WEIGHT_DECAYS,
}
UI_MAX = {"train_epochs": 200, "train_momentum": 0.99}


def nearest_choice(options: tuple, value: float) -> float:
    """The option closest to `value` on a log scale (0 is its own option)."""
    if value == 0 and 0 in options:
        return 0
    return min((o for o in options if o > 0), key=lambda o: abs(math.log(o / value)))


def apply_preset(name: str) -> None:
    apply_settings(PRESETS[name])


@st.cache_data(show_spinner=False, max_entries=64, ttl=60)
def epoch_estimate(config_items: tuple, rows: int) -> float:
    """Seconds per epoch for these settings on this machine, measured in a few steps.

    Kept a minute, not forever: a timing taken while the machine was busy (another
    session training, say) should not outlive the load.
    """
    return estimate_epoch_seconds(TrainConfig(**dict(config_items)), rows)
