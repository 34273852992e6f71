"""Presenter mode in widgets and CSS: the frame for a projector (no sidebar, larger type, the
hidden controls out of sight), the Train page's big figures, and the link that opens it.

The mode itself (on, and which controls it hides) is app_state's `Presenter`, read from the
address: `?present=1&hide=optimizer,schedule` plus the Train settings, as TF Playground's
"hide controls" links do. Everything here is local CSS: no font or script from elsewhere.
"""

from __future__ import annotations

from urllib.parse import urlencode

import plotly.graph_objects as go
import streamlit as st

import app_state

# Where each hideable control is drawn: a CSS selector (Streamlit gives a keyed element the
# class st-key-<key>). The live learning-rate control's key carries a generation number.
SELECTORS = {
    **{name: f".st-key-train_{name}" for name in app_state.HIDEABLE},
    "more": '[data-testid="stPopover"]:has(> div > button p:only-child), .st-key-train_more_summary',
    "stop_rules": '[data-testid="stExpander"]:has(.st-key-train_patience)',
    "live_lr": '[class*="st-key-train_live_lr_"]',
    "scenarios": ".st-key-train_scenarios",
}
LABELS = {
    "preset": "preset",
    "hidden": "hidden units",
    "optimizer": "optimiser",
    "lr": "learning rate",
    "batch": "batch size",
    "epochs": "epochs",
    "more": '"More settings"',
    "activation": "activation",
    "init": "initialisation",
    "schedule": "schedule",
    "momentum": "momentum",
    "decay": "weight decay",
    "shift": "shift",
    "shuffle": "shuffle",
    "seed": "seed",
    "stop_rules": "stop rules",
    "step": "Step button",
    "smoothing": "loss smoothing",
    "live_lr": "live learning rate",
    "scenarios": "guided scenarios",
}

# The projector's frame: no sidebar or Streamlit header, larger type (Streamlit sizes its text
# and spacing in rem), little padding, big figures. The presenter's bar floats at the top
# right, beside the Train page's Start/Stop row, so that the charts get the height.
FRAME_CSS = """
[data-testid="stSidebar"], [data-testid="stSidebarCollapsedControl"], [data-testid="stExpandSidebarButton"],
header[data-testid="stHeader"] { display: none !important; }
html { font-size: 18px; }
[data-testid="stMainBlockContainer"] { padding: 3.2rem 1.5rem 2rem; max-width: none; }
[data-testid="stMainBlockContainer"] > [data-testid="stVerticalBlock"]
  > [data-testid="stLayoutWrapper"]:has(.st-key-presenter_bar) {
  position: fixed; top: 0.35rem; right: 1.5rem; left: auto; width: fit-content !important; z-index: 999990;
  background: var(--st-background-color, #fff); padding: 0.2rem 0 0.2rem 0.6rem; }
.st-key-presenter_figures [data-testid="stMetricValue"] { font-size: 2.6rem; line-height: 1.15; }
.st-key-presenter_figures [data-testid="stMetricLabel"] p { font-size: 1rem; }
"""
TRAIN_CSS = """
[data-testid="stMainBlockContainer"] { padding-top: 0.5rem; }
[data-testid="stMainBlockContainer"] [data-testid="stElementContainer"]:has(h1) { display: none; }
"""
CHART_FONT = 15  # px of the charts' text while presenting (Plotly's default is 12)
CURVES_HEIGHT = 300  # px of the loss and accuracy chart while presenting (380 otherwise): 720 px hold it all
PAGES = (("pages/home.py", "Overview"), ("pages/train.py", "Train"), ("pages/misclassified.py", "Misclassified"),
         ("pages/draw.py", "Draw"))  # fmt: skip


def frame_ui(page: str) -> app_state.Presenter:
    """Drawn by dashboard.py before the page: in presenter mode the CSS (the hidden controls
    included, on every page and every run) and a bar with the pages and the way out."""
    presenter = app_state.presenter()
    if not presenter.on:
        return presenter
    hidden = ", ".join(SELECTORS[name] for name in presenter.hidden)
    rules = [
        FRAME_CSS,
        TRAIN_CSS if page == "train" else "",
        f"{hidden} {{ display: none !important; }}" if hidden else "",
    ]
    st.html(f"<style>{''.join(rules)}</style>")
    query = {app_state.PRESENT_PARAM: "1"}
    if presenter.hidden:
        query[app_state.HIDE_PARAM] = ",".join(presenter.hidden)
    with st.container(horizontal=True, key="presenter_bar", vertical_alignment="center", gap="small", width="content"):
        for path, label in PAGES:
            st.page_link(path, label=label, query_params=query)
        st.button("Exit presenter mode", key="presenter_leave", on_click=app_state.leave_presenter)
    return presenter


def enlarge(figure, height: int | None = None):
    """The chart as presented: larger text, a legend on one line and, given `height`, that height
    (a copy: the figure is cached for the page's next runs). Outside presenter mode, the figure itself."""
    if not app_state.presenter().on:
        return figure
    shown = go.Figure(figure)
    shown.update_layout(font_size=CHART_FONT, legend_traceorder="normal", legend_y=-0.33)
    if height:
        shown.update_layout(height=height)
    return shown


def figures_ui(run, history: list) -> bool:
    """The Train page's big figures while presenting (test accuracy, test errors, the epoch);
    True when they say all the banner would (a finished run that learned), so it is left out."""
    if not app_state.presenter().on:
        return False
    snap = run.snapshot()
    last = history[-1] if history else None
    epoch = len(history) + 1 if snap is not None and not snap.done and snap.progress else len(history)
    with st.container(horizontal=True, key="presenter_figures", gap="large"):
        st.metric("Test accuracy", f"{last.test_acc:.2%}" if last else "–", width="content")
        st.metric("Test errors", f"{last.test_errors:,}" if last else "–", width="content")
        st.metric("Epoch", f"{min(epoch, run.config.epochs)} of {run.config.epochs}", width="content")
    return run.status == "finished" and run.learned and last is not None


def presenter_link(hidden: list[str]) -> str:
    """The address that opens this page in presenter mode with the current settings."""
    query = {app_state.PRESENT_PARAM: "1"}
    if hidden:
        query[app_state.HIDE_PARAM] = ",".join(hidden)
    query.update(app_state.settings_query())
    base = st.context.url or ""
    return f"{base}?{urlencode(query, safe=',')}"


def link_ui() -> None:
    """'Presenter link': choose the controls to hide; the link, with the current settings, to copy.
    Not drawn while presenting (the audience has no use for it; leaving the mode brings it back)."""
    if app_state.presenter().on:
        return
    with st.popover("Presenter link", key="train_presenter_link"):
        hidden = st.multiselect("Controls to hide", app_state.HIDEABLE, app_state.presenter().hidden,
                                format_func=LABELS.get, key="train_presenter_hide")  # fmt: skip
        st.code(presenter_link(hidden), language=None, wrap_lines=True)
        st.caption(
            "Open it on the projector: no sidebar, larger type, big figures, the chosen controls out of sight, "
            "and these settings. Copy it with the icon at the box's corner."
        )
