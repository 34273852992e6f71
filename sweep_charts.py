"""The Sweep page's charts: the optimisation history and the knobs' importance."""

from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go

from charts import LAYOUT, PALETTE
from compare_charts import label
from nets.sweep_report import TrialRow

STATUS_COLOURS = {"finished": PALETTE[0], "pruned": "#bbbbbb", "diverged": PALETTE[1], "running": PALETTE[2]}


def history_figure(rows: Sequence[TrialRow], best: Sequence[tuple[int, float, float]]) -> go.Figure:
    """Each trial's validation accuracy by trial number (pruned ones at the epoch they were
    stopped), and the best so far as a step line: Optuna's optimisation history."""
    fig = go.Figure()
    for status, colour in STATUS_COLOURS.items():
        shown = [r for r in rows if r.status == status and r.val_acc is not None]
        if shown:
            fig.add_scatter(
                x=[r.trial for r in shown], y=[100 * r.val_acc for r in shown], mode="markers", name=status,
                marker=dict(color=colour, size=9, line=dict(width=1, color="white")),
                customdata=[[r.run_id, r.epochs, r.planned_epochs] for r in shown],
                hovertemplate="trial %{x}: %{y:.2f}%<br>run %{customdata[0]}, "
                "%{customdata[1]} of %{customdata[2]} epochs<extra>" + status + "</extra>",
            )  # fmt: skip
    if best:
        fig.add_scatter(x=[b[0] for b in best], y=[100 * b[2] for b in best], mode="lines", name="best so far",
                        line=dict(color=PALETTE[3], shape="hv", width=2))  # fmt: skip
    # The page writes the chart's title above it (Plotly's toolbar would sit over a title in the
    # figure), and that title names the x axis: the legend sits below, where an axis title would be.
    # The house layout's top margin is where Plotly's toolbar appears on hover, clear of the data.
    fig.update_layout(**LAYOUT, yaxis_title="validation accuracy (%)")
    fig.update_xaxes(tickformat="d")
    return fig


def importance_figure(importance: dict[str, float]) -> go.Figure:
    """Optuna's importance of each knob, the most important on top."""
    names = list(importance)[::-1]
    fig = go.Figure(go.Bar(x=[importance[n] for n in names], y=[label(n) for n in names], orientation="h",
                           marker_color=PALETTE[0], hovertemplate="%{y}: %{x:.2f}<extra></extra>"))  # fmt: skip
    fig.update_layout(**{**LAYOUT, "height": max(170, 80 + 40 * len(names)), "margin": {**LAYOUT["margin"], "r": 20}},
                      xaxis_title="share of the variation", showlegend=False)  # fmt: skip
    return fig
