"""Pure Plotly builders for the Compare page: many runs at once. No Streamlit, no state."""

from __future__ import annotations

import math
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


def parallel_lines_figure(rows: Sequence[dict], settings: Sequence[str], metric: str, bands: int = 6) -> go.Figure:
    """Parallel coordinates drawn as plain lines (SVG): one polyline per run across the
    axes, each axis scaled to its own range (log for learning rate and weight decay), the
    lines coloured in `bands` bands of the metric. Draws in a fraction of the time of
    Plotly's WebGL parcoords where the browser renders WebGL in software."""
    columns = [*settings, metric]
    scaled, ticks = {}, {}
    for column in columns:
        values, labels = _axis_values(rows, column)
        numbers = [v if v is not None else float("nan") for v in values]
        if column in LOG_SCALE and not labels and all(v > 0 for v in numbers if v == v):
            numbers = [math.log10(v) if v == v else v for v in numbers]
        finite = [v for v in numbers if v == v]
        low, high = (min(finite), max(finite)) if finite else (0.0, 1.0)
        span = (high - low) or 1.0
        scaled[column] = [(v - low) / span if v == v else None for v in numbers]
        if labels:
            ticks[column] = (labels["ticktext"][0], labels["ticktext"][-1])
        else:
            raw = [v for v in values if v is not None]
            ticks[column] = (_short(min(raw)), _short(max(raw))) if raw else ("", "")
    scores = [numeric(r[metric]) for r in rows]
    known = [v for v in scores if v is not None]
    low, high = (min(known), max(known)) if known else (0.0, 1.0)
    fig = go.Figure()
    colours = _bands(bands)
    for band in range(bands):
        xs, ys, texts = [], [], []
        for i, r in enumerate(rows):
            score = scores[i]
            position = 0 if score is None or high == low else min(bands - 1, int((score - low) / (high - low) * bands))
            if position != band:
                continue
            for k, column in enumerate(columns):
                xs.append(k)
                ys.append(scaled[column][i])
                texts.append(f"run {r['run']}: {r['name']}<br>{label(column)} {r[column]}")
            xs.append(None)
            ys.append(None)
            texts.append(None)
        if xs:
            fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line=dict(color=colours[band], width=1.5), opacity=0.7,
                                     text=texts, hoverinfo="text", showlegend=False))  # fmt: skip
    # Axis titles on two lines at most, and every other one a line higher: side by side in a
    # narrow column, "hidden size" and "best validation accuracy" ran into each other.
    # The outer two lean inward, so that neither is cut at the chart's edge.
    many = len(columns) > 2
    for k, column in enumerate(columns):
        fig.add_shape(type="line", x0=k, x1=k, y0=0, y1=1, line=dict(color="#888", width=1))
        anchor = "left" if k == 0 and many else "right" if k == len(columns) - 1 and many else "center"
        title = _two_lines(label(column)) if many else label(column)
        shift = {"left": -8, "right": 8, "center": 0}[anchor]
        fig.add_annotation(x=k, y=1.02, text=f"<b>{title}</b>", showarrow=False, yanchor="bottom", xanchor=anchor,
                           xshift=shift, yshift=36 * (k % 2) if many else 0)  # fmt: skip
        # The ends' values hang inside the axis, below its top and above its bottom: level with
        # the ends, the top one ran into the axis title.
        fig.add_annotation(x=k, y=1.0, text=ticks[column][1], showarrow=False, xanchor="left", xshift=3, font_size=10,
                           yanchor="top")  # fmt: skip
        fig.add_annotation(x=k, y=0.0, text=ticks[column][0], showarrow=False, xanchor="left", xshift=3, font_size=10,
                           yanchor="bottom")  # fmt: skip
    fig.update_xaxes(visible=False, range=[-0.3, len(columns) - 0.5])
    fig.update_yaxes(visible=False, range=[-0.05, 1.12])
    legend = f"colour: {label(metric)},<br>from {_short(low)} (pale) to {_short(high)} (deep blue)"
    fig.add_annotation(xref="paper", yref="paper", x=0, y=0, xanchor="left", yanchor="top", yshift=-6, align="left",
                       text=legend, showarrow=False, font_size=12)  # fmt: skip
    top = 76 if many else 40
    fig.update_layout(height=370 + top, margin=dict(l=20, r=20, t=top, b=45), hovermode="closest")
    return fig


def _two_lines(text: str) -> str:
    """`text` broken at the space nearest its middle, if it is longer than one short word."""
    if len(text) <= 10 or " " not in text:
        return text
    spaces = [i for i, c in enumerate(text) if c == " "]
    cut = min(spaces, key=lambda i: abs(i - len(text) / 2))
    return f"{text[:cut]}<br>{text[cut + 1 :]}"


def _short(value) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def _bands(n: int) -> list[str]:
    """From a pale blue (the worst runs) to a deep blue (the best): readable on white."""
    from plotly.colors import sample_colorscale

    return sample_colorscale("Blues", [0.35 + 0.65 * i / max(1, n - 1) for i in range(n)])


def parallel_figure(rows: Sequence[dict], settings: Sequence[str], metric: str) -> go.Figure:
    """Plotly's interactive parallel coordinates (drag on an axis to filter the runs): one
    line per run from each chosen setting to the metric, coloured by the metric."""
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
    fig.update_xaxes(title_text=label(setting) + (" (log)" if log_x else ""), type="log" if log_x else None,
                     dtick=1 if log_x else None)  # fmt: skip
    fig.update_yaxes(title_text=label(metric), tickformat=".1%" if metric.endswith("acc") else None)
    fig.update_layout(height=340, margin=dict(l=60, r=10, t=20, b=50))
    return fig
