"""The entry point: `streamlit run dashboard.py`. Page config, shared status, navigation."""

import streamlit as st

import app_state
import widgets

st.set_page_config(page_title="MNIST dashboard", page_icon=":material/neurology:", layout="wide")
app_state.init()

navigation = st.navigation(
    [
        st.Page("pages/home.py", title="Overview", icon=":material/home:", default=True),
        st.Page("pages/train.py", title="Train", icon=":material/model_training:"),
    ]
)

data = widgets.require_data()  # downloads, or offers an upload; stops the script until data exists

workspace = app_state.workspace()
workspace.refresh()
training = workspace.active() is not None


def sidebar_status() -> None:
    """Data, current model and training progress."""
    ws = workspace
    ws.refresh()
    st.caption(f"**Data** · {len(data.x_train):,} train / {len(data.x_val):,} val / {len(data.x_test):,} test")
    st.caption(f"from {data.source}")
    current = ws.current()
    if current is None:
        st.caption("**Model** · none yet: train one on the Train page")
    else:
        acc = f", {current.test_acc:.2%} test accuracy" if current.test_acc is not None else ""
        st.caption(f"**Model** · {current.name} ({current.status}{acc})")
    active = ws.active()
    if active is not None and active.snapshot is not None:
        snap = active.snapshot
        epoch = snap.progress.epoch + 1 if snap.progress else 1
        st.caption(f"**Training** · {active.name}: {snap.status}, epoch {epoch} of {active.config.epochs}")
        if snap.progress:
            st.progress(snap.progress.batch / snap.progress.batches)
    elif training:
        st.rerun()  # the run just ended: redraw the page without the live tick


with st.sidebar:
    # While a run trains the status ticks every second, as a fragment; otherwise it is
    # drawn once per run (a plain call keeps it visible in AppTest's later runs too).
    st.fragment(sidebar_status, run_every=1.0)() if training else sidebar_status()

navigation.run()
