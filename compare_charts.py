"""Pure Plotly builders for the Compare page: many runs at once. No Streamlit, no state."""

from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go

from nets.compare import LOG_SCALE, numeric

NAMES = {
    "best_val_acc": "best validation accuracy",
    "test_acc": "test accuracy",
    "epochs_done": "epochs",
    "train_seconds": "training time (s)",
}


def label(column: str) -> str:
    return NAMES.get(column, column.replace("_", " "))


def _axis_values(rows: Sequence[dict], column: str) -> tuple[list, dict]:
    """Values for a parallel-coordinates axis: numbers as they are, text as codes with tick labels."""
    values = [r[column] for r in rows]
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values if v is not None):
        return [numeric(v) for v in values], {}
    categories = sorted({str(v) for v in values})
    codes = {c: i for i, c in enumerate(categories)}
    return [codes[str(v)] for v in values], {"tickvals": list(range(len(categories))), "ticktext": categories}


def parallel_figure(rows: Sequence[dict], settings: Sequence[str], metric: str) -> go.Figure:
    """One line per run from each chosen setting to the metric, coloured by the metric."""
    dimensions = []
    for column in [*settings, metric]:
        values, ticks = _axis_values(rows, column)
        dimensions.append(dict(label=label(column), values=values, **ticks))
    colour = [numeric(r[metric]) if r[metric] is not None else 0.0 for r in rows]
    fig = go.Figure(
        go.Parcoords(
            line=dict(color=colour, colorscale="Viridis", showscale=True, colorbar=dict(title=label(metric))),
            dimensions=dimensions,
        )
    )
    fig.update_layout(height=360, margin=dict(l=60, r=60, t=50, b=20))
    return fig


def scatter_figure(rows: Sequence[dict], setting: str, metric: str) -> go.Figure:
    """A setting against a metric, one point per run (hover: the run); log axes where a
    setting is explored by factors (learning rate, weight decay)."""
    points = [r for r in rows if r[metric] is not None]
    fig = go.Figure(
        go.Scatter(
            x=[r[setting] for r in points],
            y=[r[metric] for r in points],
            mode="markers",
            marker=dict(size=9, opacity=0.75),
            customdata=[r["run"] for r in points],
            text=[f"run {r['run']}: {r['name']}" for r in points],
            hovertemplate="%{text}<br>" + label(setting) + " %{x}<br>" + label(metric) + " %{y}<extra></extra>",
        )
    )
    log_x = setting in LOG_SCALE and all((r[setting] or 0) > 0 for r in points)
    fig.update_xaxes(title_text=label(setting) + (" (log)" if log_x else ""), type="log" if log_x else None)
    fig.update_yaxes(title_text=label(metric), tickformat=".1%" if metric.endswith("acc") else None)
    fig.update_layout(height=340, margin=dict(l=60, r=10, t=20, b=50))
    return fig
