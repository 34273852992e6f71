"""The frame around every page: page config, navigation, data, the sidebar's status."""

import pandas  # noqa: F401  (see below)
import streamlit as st

import app_state
import runs_ui
import widgets

# pandas is imported here, once per process before any page runs: Streamlit imports it on a
# session's first table, and Plotly reads `sys.modules["pandas"]` while it builds a figure, so
# another session drawing a chart during that first import got the half-imported module and
# failed (AttributeError: partially initialized module 'pandas'), seen with 5 sessions at once.


def render():
    """Draw the frame and return the page that navigation selected (dashboard.py runs it)."""
    st.set_page_config(page_title="MNIST dashboard", page_icon="🧠", layout="wide")
    app_state.init()
    navigation = st.navigation(app_state.pages())
    data = widgets.require_data()  # downloads, or offers an upload; stops the script until data exists
    require_store()
    workspace = app_state.workspace()
    # The Train page shows a live run itself; ticking here too would cost the browser (and
    # so the training, on a shared machine) a second redraw for nothing new.
    live_on_page = navigation.url_path == "train"
    with st.sidebar:
        app_state.remember_browser()
        if workspace.active() is not None and not live_on_page:
            # The status ticks while a run trains, every 2 s: each tick costs a little.
            st.fragment(sidebar_status, run_every=2.0)(data, training=True)
        else:
            sidebar_status(data, training=False)
    return navigation


def sidebar_status(data, training: bool) -> None:
    """Data, current model and training progress (`training`: this is the ticking view)."""
    ws = app_state.workspace()
    st.caption(f"**Data** · {len(data.x_train):,} train / {len(data.x_val):,} val / {len(data.x_test):,} test")
    st.caption(f"from {data.source}")
    st.caption("**Model** · {}, {}".format(*runs_ui.current_model(ws)))
    active = ws.active()
    if active is not None and not training:
        st.caption(f"**Training** · {active.name}: live on this page")
    elif active is not None:
        snap = active.snapshot()
        epoch = snap.progress.epoch + 1 if snap.progress else 1
        place = ws.queue_place() if snap.status == "queued" else None
        where = f"{runs_ui.ordinal(place.position)} in line" if place else f"epoch {epoch} of {active.config.epochs}"
        st.caption(f"**Training** · {active.name}: {snap.status}, {where}")
        if snap.progress:
            st.progress(snap.progress.batch / snap.progress.batches)
    elif training:
        st.rerun()  # the run just ended: redraw the page without the live tick


def require_store() -> None:
    """The runs store, or one line saying why it cannot be used (the page stops)."""
    if app_state.store() is None:
        st.error(f"The runs store cannot be used: {app_state.store_error()}")
        st.stop()


def page_setup():
    """The first line of every page: the app's state and the data (or the data setup).

    With a folder named pages/, a fresh server treats its first request as a legacy
    multipage app: a request for /train runs pages/train.py alone, without dashboard.py,
    with Streamlit's own sidebar. Calling st.navigation switches the server out of that
    mode for good, and one rerun then runs dashboard.py around the page that was asked
    for. It costs nothing to lose: a first page load carries no click.
    """
    from streamlit.runtime.pages_manager import PagesManager

    if getattr(PagesManager, "uses_pages_directory", None):
        st.navigation(app_state.pages(), position="hidden")
        if not PagesManager.uses_pages_directory:  # rerun only if that really switched modes
            st.rerun()
    app_state.init()
    data = widgets.require_data()
    require_store()
    return data
