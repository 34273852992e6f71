"""The dashboard's state: the only module that touches st.session_state and Streamlit's caches.

- MNIST loads once per server process (`st.cache_resource`, global) and is shared
  read-only by every session: its arrays are not writeable.
- Runs live in the store (`nets.store.RunStore`, one per server process, shared by every
  session and by command-line runs) and train in the server's JobRegistry, so a reload,
  a closed tab or a server restart loses nothing; a training goes on when its tab closes.
- A browser is recognised across reloads by a random id in a cookie (never in the URL,
  so a shared configuration link cannot carry it); each session's `Workspace` is that
  browser's view of the store: what it may control, and the model it predicts with.
- Session keys are read and written only through the small functions below.
"""

from __future__ import annotations

import atexit
import dataclasses
import math
import os
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import streamlit as st
from threadpoolctl import threadpool_limits

import charts
from nets.bundle import read_bundle
from nets.checkpoint import LoadedModel, ModelFileError, load_model
from nets.config import PRESETS, TrainConfig
from nets.data import (
    FILE_NAMES,
    DataError,
    DownloadBusy,
    Mnist,
    default_cache_dir,
    download_mnist,
    download_under_way,
    find_files,
    install_files,
    load_mnist,
)
from nets.estimate import EpochEstimate, from_history, measure, same_cost
from nets.evaluation import evaluate
from nets.inside import TestSetInside, through
from nets.jobs import JobRegistry
from nets.photo import PhotoError, read_photo
from nets.preprocess import nearest, squared_norms, typical_stroke_widths
from nets.projection import Projection, pca
from nets.robustness import SPOILERS, Curve, accuracy_curve, sample, spoil
from nets.stopping import StopRules
from nets.store import RunStore, StoreError
from nets.workspace import PRETRAINED, ModelView, Workspace, WorkspaceError

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
        st.Page("pages/inside.py", title="Inside", icon="🔬"),
        st.Page("pages/compare.py", title="Compare", icon="📊"),
        st.Page("pages/sweep.py", title="Sweep", icon="🧪"),
    ]


def init() -> None:
    """Idempotent: every page calls it, so each page also works when opened first."""
    _one_blas_thread()
    st.session_state.setdefault(SELECTED_RUNS, [])


BLAS_ENV = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


@st.cache_resource(show_spinner=False)
def _one_blas_thread() -> bool:
    """Once per server: matrix products on one thread each, unless the environment sets it.

    The server shares its cores between trainings (one per core), page scripts and often
    the viewer's browser. A training on two BLAS threads loses a third of its speed as soon
    as anything else wants a core, while on one it is as fast alone (the `fast` preset here)
    and keeps its speed beside a browser's load."""
    if any(os.environ.get(name) for name in BLAS_ENV):
        return False
    threadpool_limits(limits=1, user_api="blas")
    return True


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
    """Download MNIST into the cache; None on success, else the one-line reason. A download
    that another session runs already is not waited for (the script would block) and is
    not a failure: its reason comes back, and `download_failed()` stays False."""
    try:
        download_mnist(default_cache_dir(), progress=progress, wait=False)
    except DownloadBusy as exc:
        return str(exc)
    except DataError as exc:
        st.session_state[DOWNLOAD_ERROR] = str(exc)
        return str(exc)
    _shared_data.clear()
    return None


def download_elsewhere() -> bool:
    """Whether another session (or process) is downloading MNIST into the cache now."""
    return download_under_way(default_cache_dir())


def install_uploads(files: dict[str, bytes]) -> list[str]:
    """Check uploaded IDX files and cache them (raises DataError, caching nothing, if bad)."""
    installed = install_files(files)
    _shared_data.clear()
    return installed


# --- the store, the live trainings, this browser ---------------------------------------------


@st.cache_resource(show_spinner=False)
def _store() -> RunStore:
    return RunStore()


def store() -> RunStore | None:
    """The runs store of this server (None when it cannot be opened: `store_error()` says why)."""
    try:
        found = _store()
    except StoreError as exc:
        st.session_state["store_error"] = str(exc)
        return None
    st.session_state.pop("store_error", None)
    return found


def store_error() -> str:
    return st.session_state.get("store_error", "")


@st.cache_resource(show_spinner=False)
def registry() -> JobRegistry:
    """The server's live trainings; when the server stops, live runs are recorded as interrupted."""
    jobs = JobRegistry(_store())
    atexit.register(jobs.shutdown)
    return jobs


BROWSER_COOKIE = "mnist_dashboard_browser"
BROWSER_ID = re.compile(r"[0-9a-f]{32}")


def browser_id() -> str:
    """A random id that this browser keeps in a cookie (a year, this site only): reloads
    and new tabs of the same browser find their runs again. It never goes into the URL,
    so a shared link does not hand over the right to stop someone's run."""
    known = st.session_state.get("browser_id")
    if known:
        return known
    cookie = st.context.cookies.get(BROWSER_COOKIE, "")
    known = cookie if isinstance(cookie, str) and BROWSER_ID.fullmatch(cookie) else secrets.token_hex(16)
    st.session_state["browser_id"] = known
    return known


def remember_browser() -> None:
    """Set the cookie when the browser did not send it (a first visit): a script of ours,
    with an id of our own making, nothing from the user."""
    if st.context.cookies.get(BROWSER_COOKIE) != browser_id():
        st.html(
            f"<script>document.cookie = '{BROWSER_COOKIE}={browser_id()}; path=/; max-age=31536000; "
            "SameSite=Strict';</script>",
            unsafe_allow_javascript=True,
        )


def _session_ended(ws: Workspace) -> None:
    ws.registry.absent(ws.owner)  # its last session gone: its queued run leaves the queue after a grace


@st.cache_resource(scope="session", show_spinner=False, on_release=_session_ended)
def _workspace(owner: str) -> Workspace:
    """Once per session: the registry counts the browser's open sessions (a queued run waits
    only for a browser that is still there)."""
    jobs = registry()
    jobs.present(owner)
    return Workspace(_store(), jobs, owner, pretrained=_pretrained())


def workspace() -> Workspace:
    """This browser's Workspace (kept per session: the pinned model is a session choice)."""
    return _workspace(browser_id())


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


@dataclass(frozen=True)
class DataPictures:
    """The Overview's pictures of the data set: 30 sample digits (a PNG) and the digits per
    class of the training and test sets (figures)."""

    samples: bytes
    train_counts: object
    test_counts: object


def data_pictures(data: Mnist) -> DataPictures:
    """Drawn once per data set and process (about 0.1 s of every Overview visit otherwise)."""
    return _data_pictures(id(data), data)


@st.cache_resource(show_spinner=False, max_entries=2)
def _data_pictures(key: int, _data: Mnist) -> DataPictures:
    sample = np.random.default_rng(0).choice(len(_data.x_train), 30, replace=False)  # the same every time
    return DataPictures(
        samples=charts.digits_png(_data.x_train[sample], [str(_data.y_train[i]) for i in sample]),
        train_counts=charts.class_counts_figure(_data.y_train, "Training digits per class"),
        test_counts=charts.class_counts_figure(_data.y_test, "Test digits per class"),
    )


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


PRETRAINED_FILE = Path(__file__).resolve().parent / "models" / "pretrained.npz"


@st.cache_resource(show_spinner=False)
def _pretrained() -> LoadedModel:
    """The shipped model, read once per process (pages predict through fresh nets built
    from it: a net's layers cache their last input, so users must not share one)."""
    return load_model(PRETRAINED_FILE)


def pretrained_accuracy() -> float | None:
    return _pretrained().meta.get("test_acc")


def model_labels(ws: Workspace, choices: list, records: list | None = None) -> dict:
    """How each model choice reads in a selector (the UI's words; the choice is the key),
    from one listing of the store (`records`, when the page has read it)."""
    records = ws.store.runs() if records is None else records
    by_id = {r.run_id: r for r in records}
    current = ws.current_choice(records)
    live = ws.registry.live_run(ws.owner)
    labels = {}
    for choice in choices:
        if choice == PRETRAINED:
            acc = pretrained_accuracy()
            text = "shipped model" + (f" ({acc:.2%} test accuracy)" if acc else "")
        elif (record := by_id.get(choice)) is None:
            text = f"run {choice}"  # deleted meanwhile: the selector drops it on the next run
        elif choice == live:
            text = f"{record.name} (training now, live)"
        else:
            text = record.name + (f" ({record.test_acc:.2%})" if record.test_acc is not None else "")
        labels[choice] = text + (" · current model" if choice == current else "")
    return labels


def model_label(choice, ws: Workspace, records: list | None = None) -> str:
    return model_labels(ws, [choice], records)[choice]


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
    st.session_state.pop("draw_source", None)


def drawing() -> dict | None:
    """The drawing as the canvas last sent it (Fabric.js JSON), to restore it on return."""
    return st.session_state.get("draw_drawing")


def remember_drawing(json_data: dict | None, processed) -> None:
    """Keep what the canvas sent. An empty canvas does not replace a loaded test digit or
    photo (loading one clears the canvas); a stroke does."""
    if json_data is not None:
        st.session_state["draw_drawing"] = json_data
    if processed is None or (processed.empty and draw_source()[0] != "drawing"):
        return
    st.session_state["draw_input"] = processed
    st.session_state["draw_source"] = ("drawing",)


def take_photo_upload() -> None:
    """The photo uploader's callback: read the photo as MNIST made its digits into the net's
    input, or keep one line saying why not."""
    upload = st.session_state.get("draw_photo")
    if upload is None:
        return
    try:
        processed = read_photo(upload.getvalue(), upload.name)
    except PhotoError as exc:
        st.session_state["draw_photo_message"] = f"Not read: {exc}."
        return
    if processed.empty:
        st.session_state["draw_photo_message"] = f"No digit found in {upload.name}: the ink and the paper look alike."
        return
    load_draw_input(processed, ("photo", upload.name))


def pop_photo_message() -> str | None:
    return st.session_state.pop("draw_photo_message", None)


def draw_source() -> tuple:
    """Where the Draw page's input came from: ("drawing",), ("test", index) or ("photo", file name)."""
    return st.session_state.get("draw_source", ("drawing",))


def load_draw_input(processed, source: tuple) -> None:
    """Put a test digit or a photo into the net's input on the Draw page (the canvas is cleared)."""
    st.session_state["draw_canvas_generation"] = st.session_state.get("draw_canvas_generation", 0) + 1
    st.session_state.pop("draw_drawing", None)
    st.session_state["draw_input"] = processed
    st.session_state["draw_source"] = source


def choice_index(memory: str, choices: list) -> int:
    """Where a page's model selector stands: the model this session chose there (kept by its
    stable key under `memory`, so a new epoch, a new drawing or a run ending does not move
    it), else the current model (the first choice)."""
    chosen = st.session_state.get(memory)
    return choices.index(chosen) if chosen in choices else 0


def remember_choice(memory: str, widget_key: str) -> None:
    st.session_state[memory] = st.session_state.get(widget_key)


def drawing_probabilities(view, x: np.ndarray) -> np.ndarray:
    """The model's probabilities for one drawing."""
    return view.net().probabilities(x[None, :])[0]


def drawn_input():
    """The last preprocessed drawing (survives a return to the page before the next stroke)."""
    return st.session_state.get("draw_input")


def selected_run_ids() -> list[int]:
    return list(st.session_state.get(SELECTED_RUNS, []))


def set_selected_run_ids(run_ids: list[int]) -> None:
    st.session_state[SELECTED_RUNS] = list(run_ids)


def set_focus_run(run_id: int | None) -> None:
    """The run the Train page's banner and weights describe when nothing trains."""
    st.session_state["train_focus_run"] = run_id


TRAIN_TABLE_ROWS = 100  # the Train page lists the newest runs; the Compare page has them all


def shown_runs(ws: Workspace, active, records: list) -> list:
    """What the Train page draws, the first one described: the live run and the selected
    runs while this browser trains; else the selected runs; else the run last started or
    picked here; else this browser's newest run."""
    wanted = selected_run_ids()
    focus = st.session_state.get("train_focus_run")
    if active is not None:
        wanted = [active.run_id, *(i for i in wanted if i != active.run_id)]
    elif not wanted:
        mine = [r.run_id for r in records if r.owner == ws.owner]
        wanted = [focus] if focus is not None else mine[:1]
    elif focus in wanted:
        wanted = [focus, *(i for i in wanted if i != focus)]
    pick = scenario_pick()
    if pick is not None and pick.pinned and pick.baseline_run not in wanted:
        wanted = [*wanted, pick.baseline_run]  # a guided scenario's baseline stays drawn until unpinned
    shown = []
    for run_id in wanted:
        try:
            shown.append(ws.run(run_id))
        except WorkspaceError:
            continue  # deleted elsewhere
    return shown


def uploaded_accuracy(ws: Workspace, run, data: Mnist) -> float | None:
    """An uploaded model's test accuracy, evaluated once per model version."""
    if run.record.status != "uploaded":
        return None
    view = ws.model(run.run_id)
    return evaluation(view, data).accuracy if view is not None else None


def take_model_upload() -> None:
    """The model uploader's callback: keep the file as a run and make it the current model.
    A callback runs before the page, so the sidebar names the new model in the same run."""
    upload = st.session_state.get("train_model_upload")
    if upload is None:
        return
    try:
        run_id = workspace().add_bundle(read_bundle(upload.getvalue(), name=upload.name))
    except ModelFileError as exc:
        st.session_state["train_upload_message"] = ("error", f"Not loaded, nothing changed: {exc}")
    except StoreError as exc:
        st.session_state["train_upload_message"] = ("error", f"Not kept: {exc}")
    else:
        ws = workspace()
        kind = "a run with its curves" if ws.run(run_id).record.source == "import" else "a model"
        now = "it is now the current model" if ws.current_choice() == run_id else "it did not learn: not made current"
        message = f"Loaded {upload.name} as run {run_id}, {kind}; {now}."
        st.session_state["train_upload_message"] = ("ok", message)
        set_selected_run_ids([])
        set_focus_run(run_id)


def pop_upload_message() -> tuple[str, str] | None:
    return st.session_state.pop("train_upload_message", None)


# --- presenter mode ----------------------------------------------------------------------------

PRESENT_PARAM, HIDE_PARAM = "present", "hide"  # a presenter link: ?present=1&hide=optimizer,schedule
# The controls a presenter link may hide, by stable name, in the order they are offered
# (presenter_ui knows where each is drawn).
HIDEABLE = ("preset", "hidden", "optimizer", "lr", "batch", "epochs", "more", "activation", "init", "schedule",
            "momentum", "decay", "shift", "shuffle", "seed", "stop_rules", "step", "smoothing", "live_lr",
            "scenarios")  # fmt: skip


@dataclass(frozen=True)
class Presenter:
    """This session's presenter mode: on or off, and the controls it hides (names of HIDEABLE)."""

    on: bool = False
    hidden: tuple[str, ...] = ()


def presenter() -> Presenter:
    """Presenter mode as the address asks when it asks (?present=1&hide=a,b; unknown names are
    ignored), else as it asked last: a page switch drops the query, not the mode."""
    params = st.query_params
    if PRESENT_PARAM in params:
        asked = {name.strip() for name in params.get(HIDE_PARAM, "").split(",")}
        hidden = tuple(name for name in HIDEABLE if name in asked)
        st.session_state["presenter"] = Presenter(params[PRESENT_PARAM] in ("1", "true"), hidden)
    return st.session_state.get("presenter", Presenter())


def leave_presenter() -> None:
    st.session_state["presenter"] = Presenter()
    for key in (PRESENT_PARAM, HIDE_PARAM):
        if key in st.query_params:
            del st.query_params[key]


def settings_query(values=None) -> dict[str, str]:
    """The Train page's settings as its controls write them into the address (only what differs
    from the fast preset, their default), for a link that opens with the same settings."""
    values = st.session_state if values is None else values
    fast, query = PRESETS["fast"], {}
    for key, name in SETTING_KEYS.items():
        value = values.get(key, getattr(fast, name))
        if value != getattr(fast, name):
            query[key] = _query_text(value)
    return query


def _query_text(value) -> str:
    """A control's value as Streamlit writes it into the address (rates as the controls show them, 5e-05)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return f"{value:g}" if isinstance(value, float) else str(value)


# --- guided scenarios --------------------------------------------------------------------------


@dataclass(frozen=True)
class ScenarioPick:
    """The guided scenario this session ran last: its key, its two runs, and whether the
    baseline stays drawn on the Train page's charts."""

    key: str
    baseline_run: int
    variant_run: int
    pinned: bool = True


def scenario_pick() -> ScenarioPick | None:
    return st.session_state.get("scenario_pick")


def set_scenario_pick(pick: ScenarioPick | None) -> None:
    st.session_state["scenario_pick"] = pick


def unpin_baseline() -> None:
    if (pick := scenario_pick()) is not None:
        set_scenario_pick(dataclasses.replace(pick, pinned=False))


def set_scenario_error(message: str) -> None:
    st.session_state["scenario_error"] = message


def set_scenario_started() -> None:
    st.session_state["scenario_started"] = True


def pop_scenario_started() -> bool:
    """Whether a card's button started its scenario in this run's callback (its button, drawn
    disabled meanwhile because a run now trains, does not say so itself)."""
    return st.session_state.pop("scenario_started", False)


def pop_scenario_error() -> str | None:
    return st.session_state.pop("scenario_error", None)


@st.cache_resource(show_spinner=False)
def scenario_lock() -> threading.Lock:
    """Held while a session looks for a scenario's baseline and starts it: a class that presses
    the same card at once trains one shared baseline, not twenty."""
    return threading.Lock()


def load_scenario_settings(config: TrainConfig) -> None:
    """A scenario's variant into the Train page's controls, with its preset named when it is one."""
    apply_settings(config)
    whole = config.replace(train_samples=None)
    st.session_state["train_preset"] = next((name for name, c in PRESETS.items() if c == whole), None)


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
    "train_elastic": "augment_elastic",
    "train_rotate": "augment_rotate",
    "train_scale": "augment_scale",
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


def control_values(changes: dict) -> dict:
    """Config changes (field -> value) as the Train page's controls can show them: a value
    between a control's choices is snapped to the nearest one (an advised rate of 3.33 is 2)."""
    fields = {name: key for key, name in SETTING_KEYS.items()}
    return {
        name: nearest_choice(CHOICES[fields[name]], value) if fields.get(name) in CHOICES else value
        for name, value in changes.items()
    }


def nearest_choice(options: tuple, value: float) -> float:
    """The option closest to `value` on a log scale (0 is its own option)."""
    if value == 0 and 0 in options:
        return 0
    return min((o for o in options if o > 0), key=lambda o: abs(math.log(o / value)))


# Stop rules chosen before Start: widget key -> StopRules field; 0 switches a rule off.
STOP_KEYS = {"train_patience": "patience", "train_time_budget": "time_budget", "train_target_acc": "target_val_acc"}


def stop_rules() -> StopRules:
    """The stop rules of the Train page's controls (the target is set in percent there)."""
    values = {field: st.session_state.get(key) or None for key, field in STOP_KEYS.items()}
    if values["target_val_acc"] is not None:
        values["target_val_acc"] = values["target_val_acc"] / 100
    if values["patience"] is not None:
        values["patience"] = int(values["patience"])
    return StopRules(**values)


def smoothing() -> float:
    """The loss trace's smoothing (W&B's slider: 0 = raw, 0.99 = very smooth)."""
    return float(st.session_state.get("train_smoothing", 0.6))


def new_live_rate_control() -> None:
    """A new run (or an Apply) draws the live learning-rate control afresh, at the run's rate.

    The control is keyed by a generation: a browser's message still carrying the old
    control's value (its timer can send one while an Apply redraws the page) then reaches a
    control that is gone, and neither reverts the run's rate nor what the control shows."""
    st.session_state["train_live_gen"] = st.session_state.get("train_live_gen", 0) + 1


def live_rate_key() -> str:
    return f"train_live_lr_{st.session_state.get('train_live_gen', 0)}"


def change_live_rate(key: str) -> None:
    """The live learning-rate control's callback: the running run takes it from its next
    batch. Only the current control's: an older generation's value is a stale message."""
    if key == live_rate_key():
        workspace().set_learning_rate(float(st.session_state[key]))


def apply_advice(config: TrainConfig, changes: dict, live: bool, note: str) -> None:
    """An Apply button's callback: the learning rate into the running run when `live`, and
    the whole fix into the controls (from the run's own settings), for the next run."""
    if live and "learning_rate" in changes:
        workspace().set_learning_rate(nearest_choice(LEARNING_RATES, changes["learning_rate"]))
        new_live_rate_control()
    apply_settings(config.replace(**changes))
    st.session_state["train_preset"] = None  # the controls are the run's settings with the fix, no preset
    held = {key: st.session_state[key] for key in (*SETTING_KEYS, "train_preset")}
    st.session_state["train_held_settings"] = held
    st.session_state["train_note"] = note
    st.session_state["train_apply_pending"] = True  # the live view then redraws the whole page


def hold_applied_settings(disabled: bool) -> None:
    """Called before the settings controls are drawn: an Apply's values win over what a
    browser still reports from before it.

    While a run trains the page's timer can send a message from before the fix was drawn:
    Streamlit folds it into the rerun that draws the fix, and seeds a disabled control bound
    to the URL from that message's address (still the old value) unless the value was set in
    the same run. The controls are disabled while a run trains, so the applied values are set
    in every run until the controls are enabled again, and once more at that moment."""
    held = st.session_state.get("train_held_settings")
    if held is None:
        return
    for key, value in held.items():
        st.session_state[key] = value  # set in this run, even if equal: only that outranks the URL
    if not disabled:
        del st.session_state["train_held_settings"]


def pop_apply_pending() -> bool:
    """An Apply (made in the live view, which reruns alone) still needs the whole page redrawn,
    so that the settings outside it show the fix."""
    return st.session_state.pop("train_apply_pending", False)


def pop_train_note() -> str | None:
    """What the last Apply did, once, on the page drawn after it."""
    if st.session_state.get("train_apply_pending"):
        return None
    return st.session_state.pop("train_note", None)


def health_epoch(epochs: int) -> int:
    """The epoch (1-based) the histogram slider stands on, set before the slider is drawn:
    the newest, unless the user moved it back (then it stays there while new epochs come)."""
    chosen = st.session_state.get("train_health_epoch")
    pinned = st.session_state.get("train_health_pinned", False)
    value = min(chosen, epochs) if pinned and chosen else epochs
    st.session_state["train_health_epoch"] = value
    return value


def pin_health_epoch() -> None:
    st.session_state["train_health_pinned"] = True


def preset_choice() -> str | None:
    """The preset the Train page's preset control shows (None when the settings are the user's own)."""
    return st.session_state.get("train_preset")


def set_installed_note(note: str) -> None:
    """What an upload of MNIST files cached, to confirm it once on the next run."""
    st.session_state["data_installed_note"] = note


def pop_installed_note() -> str | None:
    return st.session_state.pop("data_installed_note", None)


def apply_preset(name: str) -> None:
    apply_settings(PRESETS[name])


def epoch_estimate(config: TrainConfig, data: Mnist, records: list) -> EpochEstimate:
    """Seconds per epoch for these settings here: from the runs already made with the same
    cost when there are some, else measured now (kept ten minutes per cost)."""
    found = store()
    if found is not None:
        matching = [r.run_id for r in records if same_cost(r.config, config) and r.epochs_done > 1][:5]
        estimate = from_history(found.histories(matching).values()) if matching else None
        if estimate is not None:
            return estimate
    cost = tuple(sorted(config.to_dict().items()))
    return _measured(cost, data, data.source)


@st.cache_data(show_spinner=False, max_entries=64, ttl=600)
def _measured(config_items: tuple, _data: Mnist, source: str) -> EpochEstimate:
    return measure(TrainConfig(**dict(config_items)), _data)


# --- the Compare page --------------------------------------------------------------------------


def store_signature(found: RunStore, records: list | None = None) -> tuple:
    """What changes when a run is added, deleted, renamed, tagged or makes progress."""
    records = found.runs() if records is None else records
    return tuple((r.run_id, r.status, r.epochs_done, r.name, r.tags) for r in records)


def compare_columns() -> dict:
    return {
        "best_val_acc": st.column_config.NumberColumn("best val acc", format="percent"),
        "test_acc": st.column_config.NumberColumn("test acc", format="percent"),
        "learning_rate": st.column_config.NumberColumn("learning rate", format="%g"),
        "weight_decay": st.column_config.NumberColumn("weight decay", format="%g"),
        "init_std": st.column_config.NumberColumn("init std", format="%g"),
        "train_seconds": st.column_config.NumberColumn("train s", format="%.1f"),
        "epochs_done": st.column_config.NumberColumn("epochs done"),
        "created": st.column_config.DatetimeColumn("created", format="YYYY-MM-DD HH:mm"),
    }


def compare_table_key(statuses, sources, tags, sweep) -> str:
    """The run table's key, new for new filters: a selection is made of row positions,
    which would mean other runs under other filters."""
    return "compare_table_" + "|".join(",".join(map(str, part)) for part in (statuses, sources, tags, [sweep or ""]))


def set_compare_message(message: str) -> None:
    st.session_state["compare_message"] = message


def pop_compare_message() -> str | None:
    return st.session_state.pop("compare_message", None)


def pending_delete() -> list[int] | None:
    """The runs the user asked to delete, waiting for the confirmation."""
    return st.session_state.get("compare_pending_delete")


def set_pending_delete(run_ids: list[int] | None) -> None:
    st.session_state["compare_pending_delete"] = run_ids


# --- the Misclassified page's filters ----------------------------------------------------------


def mis_pick_cell() -> None:
    """A click on the confusion matrix filters the grid to that (true, predicted) pair."""
    cell = picked("mis_confusion")
    if isinstance(cell, list) and len(cell) == 2 and all(whole(v, 0, 9) for v in cell):
        true, predicted = (int(v) for v in cell)
        st.session_state.update(mis_true=true, mis_pred=predicted, mis_show="mistakes", mis_page=1)


def mis_pick_digit() -> None:
    """A click on a digit of the grid opens its details."""
    index = picked("mis_grid")
    if whole(index, 0, 10**6):
        st.session_state["mis_selected"] = int(index)


def picked(chart_key: str):
    """The customdata of the first point selected on a chart, as the browser sent it, or None.

    A selection arrives from the browser as JSON: a modified client can send any shape and
    any values in it, so the callers check what they take (`whole`) and ignore the rest.
    """
    try:
        points = st.session_state[chart_key].selection.points
        return points[0]["customdata"] if isinstance(points, list) and points else None
    except (AttributeError, KeyError, TypeError, IndexError):
        return None


def whole(value, low: int, high: int) -> bool:
    """Whether a value from the browser is a whole number from low to high (not a bool, NaN or text)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return low <= value <= high and float(value).is_integer()


def mis_reset_page() -> None:
    st.session_state["mis_page"] = 1


def mis_cell(everything) -> tuple:
    """The (true, predicted) filter, `everything` where unset."""
    return st.session_state.get("mis_true", everything), st.session_state.get("mis_pred", everything)


def clamp_mis_page(pages: int) -> None:
    st.session_state["mis_page"] = min(st.session_state.get("mis_page", 1), pages)


def mis_selected() -> int | None:
    return st.session_state.get("mis_selected")


# --- the Inside page ---------------------------------------------------------------------------
# Everything computed from the whole test set is kept per model version (ModelView.key, which
# changes whenever the weights do), in the server's memory, for the few latest versions.


@st.cache_resource(show_spinner="Reading the test set through the net…", max_entries=4)
def _inside_test(key: tuple, _view, _data: Mnist, source: str) -> TestSetInside:
    return through(_view.params(), _view.config.activation, _data.x_test, _data.y_test)


def inside_test(view, data: Mnist) -> TestSetInside:
    """The test set through a model: hidden activations and scores, once per model version."""
    return _inside_test(view.key, view, data, data.source)


@st.cache_resource(show_spinner="Placing the test digits on the map…", max_entries=4)
def _projection(key: tuple, source: str, _seen: TestSetInside) -> Projection:
    return pca(_seen.hidden)


def projection(view, data: Mnist) -> Projection:
    """The 2-D map of the hidden layer for the test set, once per model version."""
    return _projection(view.key, data.source, inside_test(view, data))


ROBUSTNESS_SAMPLE = 2_000  # test digits spoiled for the curves (a fixed sample: 9 strengths x 3 kinds)


@st.cache_resource(show_spinner="Spoiling test digits at every strength…", max_entries=4)
def _curves(key: tuple, source: str, _view, _data: Mnist) -> dict[str, Curve]:
    rows = robustness_sample(_data)
    net = _view.net()
    images, labels = _data.x_test[rows], _data.y_test[rows]
    return {kind: accuracy_curve(lambda x: net.predict(x).argmax(axis=1), images, labels, kind) for kind in SPOILERS}


def robustness_sample(data: Mnist):
    return sample(len(data.x_test), ROBUSTNESS_SAMPLE)


@st.cache_resource(show_spinner=False, max_entries=64)
def _spoiled(key: tuple, source: str, kind: str, strength: float, _view, _data: Mnist) -> tuple:
    rows = robustness_sample(_data)
    spoiled = spoil(kind, _data.x_test[rows], strength)
    predictions = _view.net().predict(spoiled).argmax(axis=1)
    return float((predictions == _data.y_test[rows]).mean()), spoiled[:8], predictions[:8]


def spoiled_sample(view, data: Mnist, kind: str, strength: float) -> tuple:
    """(accuracy on the robustness sample spoiled at `strength`, its first 8 digits spoiled, their predictions)."""
    return _spoiled(view.key, data.source, kind, float(strength), view, data)


def robustness_curves(view, data: Mnist) -> dict[str, Curve]:
    """Accuracy against noise, rotation and stroke thickness on a fixed sample, once per model version."""
    return _curves(view.key, data.source, view, data)


@st.cache_resource(show_spinner=False, max_entries=32)
def _snapshot(run_id: int, epochs: int, _store: RunStore) -> LoadedModel:
    return _store.load(run_id, epochs)


def replay_epochs(ws: Workspace, view) -> list[int]:
    """The epochs after which a stored run's weights were kept (none for the shipped model or a live run)."""
    if view.run_id is None or view.live:
        return []
    return [s.epochs for s in ws.store.snapshots(view.run_id)]


def model_at(ws: Workspace, view, epochs: int):
    """The model as it was after `epochs` epochs (a kept snapshot), keyed like any model version."""
    if epochs == view.epochs:
        return view
    loaded = _snapshot(view.run_id, epochs, ws.store)
    return ModelView(("run", view.run_id, epochs), view.run_id, view.name, epochs, _loaded=loaded)


def inside_unit() -> int | None:
    """The hidden unit picked on the Inside page (by a click on the diagram or the weights)."""
    return st.session_state.get("inside_unit")


def set_inside_unit(unit: int | None) -> None:
    st.session_state["inside_unit"] = unit


def inside_pick_unit(widget_key: str) -> None:
    """A click on a unit (the diagram or the weight images) picks it."""
    if (unit := _picked_index(widget_key)) is not None:
        st.session_state["inside_unit"] = unit


def _picked_index(widget_key: str) -> int | None:
    """The index (customdata) of the first point clicked on a chart, or None. It arrives from
    the browser as JSON: anything but a small non-negative whole number is ignored."""
    points = st.session_state[widget_key].selection.points
    value = points[0].get("customdata") if points and isinstance(points[0], dict) else None
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 10**7 else None


def units_off_key(model_key: tuple) -> str:
    """The switched-off units' widget key: one per model version, so another model starts whole."""
    return "inside_off_" + "_".join(str(part) for part in model_key)


def units_off(model_key: tuple) -> list[int]:
    """The units switched off for a model version."""
    return sorted(int(u) for u in st.session_state.get(units_off_key(model_key), []))


def toggle_unit_off(model_key: tuple, unit: int) -> None:
    """Switch one unit off, or back on (a button's callback: it runs before the widget is drawn)."""
    off = set(units_off(model_key))
    off.symmetric_difference_update({int(unit)})
    st.session_state[units_off_key(model_key)] = sorted(off)


def inside_pick_point() -> None:
    """A click on the map picks that test digit."""
    if (index := _picked_index("inside_map")) is not None:
        st.session_state["inside_map_digit"] = index


def inside_map_digit() -> int | None:
    return st.session_state.get("inside_map_digit")


def study_test_digit(index: int) -> None:
    """Look inside the net at test digit `index` (from the map, or a 'random' button)."""
    st.session_state.update(inside_source="test", inside_test_index=int(index), inside_view="digit")


def open_on_misclassified(index: int) -> None:
    st.session_state["mis_selected"] = int(index)


# --- sweeps ------------------------------------------------------------------------------------

SWEEP_SELECTED = "sweep_selected"  # the sweep id the Sweep page shows
SWEEP_STARTING = "sweep_starting"  # the sweep id this session launched and has not seen recorded yet


def selected_sweep() -> str | None:
    return st.session_state.get(SWEEP_SELECTED)


def select_sweep(sweep_id: str | None) -> None:
    st.session_state[SWEEP_SELECTED] = sweep_id


def starting_sweep() -> str | None:
    return st.session_state.get(SWEEP_STARTING)


def set_starting_sweep(sweep_id: str | None) -> None:
    st.session_state[SWEEP_STARTING] = sweep_id


@st.cache_data(show_spinner=False, max_entries=32)
def sweep_importance(_record, sweep_id: str, finished: int) -> dict | None:
    """Optuna's importance of each knob; computed again only when a trial finishes."""
    from nets.sweep_report import importance

    return importance(_record)


def sweep_drawn_live() -> bool | None:
    """Whether the sweep was live when the page around its live view was drawn."""
    return st.session_state.get("sweep_drawn_live")


def set_sweep_drawn_live(live: bool) -> None:
    st.session_state["sweep_drawn_live"] = live


def open_sweep_in_compare(sweep_id: str) -> None:
    """Compare's sweep filter set to this sweep (used as a button's callback)."""
    st.session_state["compare_sweep"] = sweep_id


def inside_defaults(source: str, test_index: int) -> None:
    """The Inside page's choices before its widgets exist (set once; then the widgets own them)."""
    st.session_state.setdefault("inside_source", source)
    st.session_state.setdefault("inside_test_index", int(test_index))
    st.session_state.setdefault("inside_view", "digit")


def stored_health(ws: Workspace, run_id: int, epochs: int) -> tuple:
    """A stored run's health per epoch (EpochHealth), as recorded; read again when an epoch is added."""
    return _stored_health(ws.store, str(ws.store.path), run_id, epochs)


@st.cache_data(show_spinner=False, max_entries=16)
def _stored_health(_store: RunStore, path: str, run_id: int, epochs: int) -> tuple:
    from nets.health import EpochHealth

    return tuple(EpochHealth.from_dict(h) for h in _store.health(run_id))
