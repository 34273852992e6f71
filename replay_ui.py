"""Epoch replay: a slider over the weights a run kept (after 1, 2, 4, 8, ... epochs and the last)."""

from __future__ import annotations

import streamlit as st

import app_state


def epoch_replay_ui(ws, view, page: str, container=None, explain: bool = False):
    """The model as it was after the epoch chosen on a slider (the newest when nothing else
    is chosen); `view` itself when the run kept fewer than two snapshots, is live, or is the
    shipped model (`explain`: then a caption says why there is no slider). The slider's key is
    per page and per run, so each run starts at its end."""
    kept = app_state.replay_epochs(ws, view)
    where = container if container is not None else st
    if len(kept) < 2:
        if explain:
            where.caption("A live snapshot: replay once the run ends." if view.live else "No epochs kept to replay.")
        return view
    after = where.select_slider(
        "After epoch", kept, value=kept[-1], key=f"{page}_epoch_{view.run_id}",
        help="Replay: the weights kept after 1, 2, 4, 8, ... epochs, and the last",
    )  # fmt: skip
    return app_state.model_at(ws, view, after)
