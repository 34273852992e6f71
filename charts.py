"""Pure figure builders, data in, figure out: Plotly figures, and PNG images where a picture
needs no interaction. No Streamlit, no state."""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
from PIL import Image, ImageDraw, ImageFont
from plotly.subplots import make_subplots

from nets.health import EpochHealth
from nets.smoothing import ema
from nets.training import EpochMetrics

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2")
LAYOUT = dict(margin=dict(l=50, r=10, t=40, b=40), height=320, legend=dict(orientation="h", y=-0.25))


@dataclass(frozen=True)
class Series:
    """One run's curves: a label, its per-epoch records, and a colour."""

    label: str
    history: Sequence[EpochMetrics]
    color: str


def series_for(runs: Sequence[tuple[str, Sequence[EpochMetrics]]]) -> list[Series]:
    return [Series(label, history, PALETTE[i % len(PALETTE)]) for i, (label, history) in enumerate(runs)]


def _lines(fig: go.Figure, s: Series, fields: Sequence[tuple[str, str, str]], col: int, legend: bool) -> None:
    epochs = [m.epoch + 1 for m in s.history]  # "after k epochs", 1-based on the axis
    for field, name, dash in fields:
        fig.add_trace(
            go.Scatter(
                x=epochs,
                y=[getattr(m, field) for m in s.history],
                mode="lines+markers",
                name=f"{s.label} · {name}",
                legendgroup=s.label,
                showlegend=legend,
                line=dict(color=s.color, dash=dash),
                marker=dict(size=5),
            ),
            row=1,
            col=col,
        )


LOSS_FIELDS = (("train_loss", "train", "solid"), ("val_loss", "validation", "dash"))
ACCURACY_FIELDS = (("train_acc", "train", "solid"), ("val_acc", "validation", "dash"), ("test_acc", "test", "dot"))


TRACE_DRAWN = 1500  # points of a loss trace sent to the browser at most (each second, while a run trains)


def _decimate(xs: list, ys: list, most: int = TRACE_DRAWN) -> tuple[list, list]:
    """Every k-th point (and always the last), so that a long run's trace stays light to draw."""
    step = -(-len(xs) // most) if len(xs) > most else 1
    if step == 1:
        return xs, ys
    keep = list(range(0, len(xs), step))
    if keep[-1] != len(xs) - 1:
        keep.append(len(xs) - 1)
    return [xs[i] for i in keep], [ys[i] for i in keep]


def add_loss_trace(fig: go.Figure, trace: Sequence[tuple[float, float]], smoothing: float, color: str,
                   lr_changes: Sequence[tuple[float, float]] = ()) -> None:  # fmt: skip
    """The per-batch training loss on the loss subplot, on a fractional-epoch axis: raw and
    faint behind, smoothed as W&B smooths (de-biased EMA), with each live change of the
    learning rate marked where it took effect."""
    if trace:
        xs, raw = [s for s, _ in trace], [v for _, v in trace]
        smooth = ema(raw, smoothing)
        xs_drawn, raw_drawn = _decimate(xs, raw)
        _, smooth_drawn = _decimate(xs, smooth)
        fig.add_trace(go.Scatter(x=xs_drawn, y=raw_drawn, mode="lines", line=dict(color=color, width=1), opacity=0.25,
                                 name="batch loss", showlegend=False, hoverinfo="skip"), row=1, col=1)  # fmt: skip
        fig.add_trace(go.Scatter(x=xs_drawn, y=smooth_drawn, mode="lines", line=dict(color=color, width=2),
                                 name="batch loss (smoothed)", showlegend=False,
                                 hovertemplate="epoch %{x:.2f}: %{y:.3f}<extra>batch loss, smoothed</extra>"),
                      row=1, col=1)  # fmt: skip
    for step, rate in lr_changes:
        fig.add_vline(x=step, line=dict(color="#7f7f7f", dash="dot", width=1), row=1, col=1)
        fig.add_annotation(x=step, y=1, yref="y domain", text=f"lr {rate:g}", showarrow=False, xanchor="left",
                           font=dict(size=10, color="#555"), row=1, col=1)  # fmt: skip


def training_figure(
    series: Sequence[Series],
    epochs: int | None = None,
    trace: Sequence[tuple[float, float]] = (),
    smoothing: float = 0.6,
    lr_changes: Sequence[tuple[float, float]] = (),
) -> go.Figure:
    """Loss and accuracy by epoch, side by side; one colour per run, one dash per split.

    Solid = train, dashed = validation, dotted = test. With `trace`, the first run's batch
    losses too (`add_loss_trace`), so the chart moves inside a long epoch. One figure, not
    two, because the browser redraws it every second while a run trains.
    """
    fig = make_subplots(rows=1, cols=2, subplot_titles=("Loss (cross-entropy)", "Accuracy"), horizontal_spacing=0.1)
    if series and (trace or lr_changes):
        add_loss_trace(fig, trace, smoothing, series[0].color, lr_changes)
    for s in series:
        _lines(fig, s, LOSS_FIELDS, col=1, legend=False)
        _lines(fig, s, ACCURACY_FIELDS, col=2, legend=True)
    fig.update_xaxes(title_text="epoch")
    fig.update_yaxes(tickformat=".1%", row=1, col=2)
    if not any(s.history for s in series):  # axes worth reading before the first point
        for col in (1, 2):  # Plotly draws no axes for a subplot without a trace
            fig.add_trace(go.Scatter(x=[], y=[], showlegend=False, hoverinfo="skip"), row=1, col=col)
        fig.update_yaxes(range=[0, 2.5], row=1, col=1)  # chance is ln 10 = 2.3
        fig.update_yaxes(range=[0, 1], tickformat=".0%", row=1, col=2)
    if epochs:
        done = max([len(s.history) for s in series] + [math.ceil(trace[-1][0]) if trace else 0])
        shown = axis_epochs(done, epochs)
        fig.update_xaxes(range=[0 if trace else 0.5, shown + 0.5], dtick=1 if shown <= 15 else None)
    fig.update_layout(**{**LAYOUT, "height": 380})
    return fig


AXIS_STEPS = (10, 20, 50, 100, 200, 500, 1000)


def axis_epochs(done: int, planned: int) -> int:
    """How many epochs the x axis spans: the whole plan for up to 20 epochs; for a longer
    one a step of 10, 20, 50, ... with a quarter of room ahead of the curves, so that four
    epochs of a 200-epoch run are not squeezed into the axis's first 2% (the axis grows in
    a few steps, not every epoch)."""
    if planned <= 20:
        return planned
    room = math.ceil(1.25 * max(done, 1))
    return min(planned, next((step for step in AXIS_STEPS if step >= room), room))


def tile(images: np.ndarray, columns: int, gap: int = 1, fill: float = np.nan) -> np.ndarray:
    """Images (N, h, w) -> one (rows*(h+gap)-gap, columns*(w+gap)-gap) mosaic, row by row."""
    n, h, w = images.shape
    rows = -(-n // columns)
    out = np.full((rows * (h + gap) - gap, columns * (w + gap) - gap), fill, dtype=np.float64)
    for i, image in enumerate(images):
        r, c = divmod(i, columns)
        out[r * (h + gap) : r * (h + gap) + h, c * (w + gap) : c * (w + gap) + w] = image
    return out


def weights_figure(W1: np.ndarray, units: Sequence[int], columns: int = 8) -> go.Figure:
    """First-layer weights of some hidden units as 28x28 images: what each unit looks for.

    Red pixels excite the unit, blue ones inhibit it; each unit is scaled to its own range.
    """
    images = W1[:, list(units)].T.reshape(len(units), 28, 28).astype(np.float64)
    scale = np.abs(images).max(axis=(1, 2), keepdims=True)
    images = images / np.where(scale > 0, scale, 1)
    mosaic = tile(images, columns)
    fig = go.Figure(
        go.Heatmap(z=mosaic, colorscale="RdBu_r", zmin=-1, zmax=1, showscale=False, hoverinfo="skip", zsmooth=False)
    )
    fig.update_yaxes(autorange="reversed", visible=False, scaleanchor="x")
    fig.update_xaxes(visible=False)
    fig.update_layout(
        title=f"What {len(units)} hidden units look for",
        margin=dict(l=0, r=0, t=40, b=0),
        height=60 + 40 * (-(-len(units) // columns)),
        plot_bgcolor="white",
    )
    return fig


def grey_png(image: np.ndarray) -> str:
    """A (h, w) image in [0, 1] as a PNG data URI, ink dark on white (NaN is white).

    A 30-digit grid as a heatmap is half a megabyte of JSON that Plotly validates in
    Python and the browser parses on every page visit; as a PNG it is a few kilobytes.
    """
    pixels = np.round(255 * (1 - np.clip(np.nan_to_num(image, nan=0.0), 0, 1))).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode="L").save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def digits_png(images: np.ndarray, labels: Sequence[str], columns: int = 10, scale: int = 3) -> bytes:
    """Digits (N, 784) in a grid, each labelled below, as one PNG: dark ink on white, each
    pixel a `scale` x `scale` square (crisp however the browser scales it).

    A picture, not a Plotly figure: the page that shows it first (the Overview) then draws
    without waiting for plotly.js (4.7 MB), which loads behind it for the charts below.
    """
    n = len(images)
    gap = 12  # pixels below each digit for its label (and between columns)
    mosaic = tile(images.reshape(n, 28, 28), columns, gap=gap, fill=0.0)
    mosaic = np.pad(mosaic, ((0, gap), (0, 0)))  # room for the last row's labels
    pixels = np.round(255 * (1 - np.clip(mosaic, 0, 1))).astype(np.uint8).repeat(scale, 0).repeat(scale, 1)
    picture = Image.fromarray(pixels, mode="L")
    draw = ImageDraw.Draw(picture)
    font = ImageFont.load_default(size=8 * scale)
    for i, label in enumerate(labels):
        r, c = divmod(i, columns)
        x, y = (c * (28 + gap) + 14) * scale, (r * (28 + gap) + 28 + gap / 2) * scale
        draw.text((x, y), str(label), fill=110, font=font, anchor="mm")
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")  # optimize=True: 3% smaller, 6 times slower (59 ms)
    return buffer.getvalue()


def _captioned_grid(images: np.ndarray, captions: Sequence[str], columns: int, gap: int, font: int):
    """Digits (N, 784) tiled crisp, each captioned in the gap below it.

    Returns the figure, the pitch between digits and each digit's (row, column). Digit
    (r, c) covers x in [c * pitch - 0.5, c * pitch + 27.5], y likewise (one unit a pixel).
    """
    n = len(images)
    rows = max(1, -(-n // columns))
    pitch = 28 + gap
    mosaic = tile(images.reshape(n, 28, 28), columns, gap=gap, fill=0.0)
    fig = go.Figure(go.Image(source=grey_png(mosaic), x0=0, y0=0, dx=1, dy=1, hoverinfo="skip"))
    cells = [divmod(i, columns) for i in range(n)]
    # One list, set once: add_annotation one by one re-validates all of them each time
    # (0.8 s for 30 captions).
    annotations = [
        dict(x=c * pitch + 13.5, y=r * pitch + 27.5, yanchor="top", text=caption, showarrow=False,
             font=dict(size=font), align="center")
        for (r, c), caption in zip(cells, captions, strict=True)
    ]  # fmt: skip
    fig.update_layout(annotations=annotations)
    # Half a gap of room at each side, so that the outer captions are not clipped.
    fig.update_yaxes(range=[rows * pitch - 0.5, -0.5], visible=False, scaleanchor="x", fixedrange=True)
    fig.update_xaxes(range=[-gap / 2 - 0.5, columns * pitch - gap / 2 - 0.5], visible=False, fixedrange=True)
    fig.update_layout(plot_bgcolor="white")
    return fig, pitch, cells


def digits_figure(images: np.ndarray, labels: Sequence[str], columns: int = 10) -> go.Figure:
    """A grid of 28x28 digits (N, 784), each captioned below, crisp (no smoothing)."""
    fig, _, cells = _captioned_grid(images, labels, columns, gap=12, font=13)
    fig.update_layout(margin=dict(l=0, r=0, t=10, b=0), height=40 + 70 * (cells[-1][0] + 1 if cells else 1))
    return fig


def class_counts_figure(labels: np.ndarray, title: str) -> go.Figure:
    counts = np.bincount(labels, minlength=10)
    fig = go.Figure(
        go.Bar(x=[str(d) for d in range(10)], y=counts, texttemplate="%{y:,}", marker_color=PALETTE[0],
               hovertemplate="digit %{x}: %{y:,} images<extra></extra>")
    )  # fmt: skip
    fig.update_layout(title=title, xaxis_title="digit", yaxis_title="images", **{**LAYOUT, "height": 300})
    fig.update_xaxes(type="category")
    fig.update_yaxes(tickformat=",")
    return fig


def _click_targets(x: Sequence[float], y: Sequence[float], customdata: Sequence, size: int, hover: Sequence[str]):
    """Invisible square markers over heatmap cells: Streamlit returns no selection for a
    click on a heatmap, but does for a scatter, with each point's customdata."""
    return go.Scatter(
        x=list(x),
        y=list(y),
        mode="markers",
        marker=dict(symbol="square", size=size, opacity=0.01, color="black"),
        customdata=list(customdata),
        hovertext=list(hover),
        hoverinfo="text",
        showlegend=False,
    )


def confusion_figure(cm: np.ndarray, selected: tuple[int, int] | None = None) -> go.Figure:
    """The 10x10 confusion matrix (rows: truth, columns: prediction); click a cell to pick it.

    Colour shows only the mistakes (the diagonal, ~1,000 each, would wash them out); every
    cell shows its count.
    """
    n = cm.shape[0]
    off = cm.astype(float)
    np.fill_diagonal(off, np.nan)
    fig = go.Figure(
        go.Heatmap(
            z=off, x=list(range(n)), y=list(range(n)), colorscale="Reds", showscale=False, hoverinfo="skip",
            text=cm.tolist(), texttemplate="%{text:,}", xgap=1, ygap=1,
        )
    )  # fmt: skip
    cells = [(i, j) for i in range(n) for j in range(n)]
    fig.add_trace(
        _click_targets(
            [j for _, j in cells], [i for i, _ in cells], [[i, j] for i, j in cells], 30,
            [f"true {i}, predicted {j}: {cm[i, j]:,} digits" for i, j in cells],
        )
    )  # fmt: skip
    if selected is not None:
        i, j = selected
        fig.add_shape(type="rect", x0=j - 0.5, x1=j + 0.5, y0=i - 0.5, y1=i + 0.5, line=dict(color="#1f77b4", width=3))
    # Exactly the n rows and columns, at any width: no scaleanchor, which would stretch
    # the y axis (to -3..12 in a narrow column) to keep the cells square.
    fig.update_xaxes(title="predicted", dtick=1, side="top", fixedrange=True, range=[-0.5, n - 0.5], showgrid=False,
                     zeroline=False)  # fmt: skip
    fig.update_yaxes(title="true", dtick=1, range=[n - 0.5, -0.5], fixedrange=True, showgrid=False, zeroline=False)
    fig.update_layout(margin=dict(l=50, r=10, t=50, b=10), height=420, plot_bgcolor="white", dragmode=False)
    return fig


def per_class_figure(accuracy: np.ndarray) -> go.Figure:
    """Accuracy per true digit, one horizontal bar each, the axis ending at 100%.

    Horizontal, so that each bar has room for its label inside it at any width.
    """
    digits = [str(d) for d in range(len(accuracy))]
    fig = go.Figure(
        go.Bar(y=digits, x=accuracy, orientation="h", text=[f"{a:.1%}" for a in accuracy], textposition="inside",
               insidetextanchor="end", textangle=0, marker_color=PALETTE[0],
               hovertemplate="digit %{y}: %{x:.2%}<extra></extra>")
    )  # fmt: skip
    low = float(np.nanmin(accuracy)) if len(accuracy) and not np.isnan(accuracy).all() else 0.0
    fig.update_xaxes(range=[max(0.0, low - 0.05), 1.0], tickformat=".0%", fixedrange=True)
    fig.update_yaxes(type="category", title="true digit", autorange="reversed", fixedrange=True)
    fig.update_layout(title="Accuracy per digit", **{**LAYOUT, "height": 340, "margin": dict(l=50, r=15, t=40, b=30)})
    return fig


def digit_grid_figure(images: np.ndarray, captions: Sequence[str], indices: Sequence[int], columns: int = 8):
    """Digits (N, 784) in a crisp grid, captioned (two short lines fit: "a<br>b"); click one
    to select its test index. Eight a row: at 1024 px each digit is then ~38 px wide and its
    two caption lines fit between the rows."""
    fig, pitch, cells = _captioned_grid(images, captions, columns, gap=24, font=11)
    fig.add_trace(
        _click_targets(
            [c * pitch + 13.5 for _, c in cells], [r * pitch + 13.5 for r, _ in cells], list(indices), 40,
            [f"test digit #{i}" for i in indices],
        )
    )  # fmt: skip
    rows = cells[-1][0] + 1 if cells else 1
    fig.update_layout(margin=dict(l=0, r=0, t=0, b=0), height=10 + 80 * rows, dragmode=False)
    return fig


def probability_figure(probs: np.ndarray, truth: int | None, predicted: int) -> go.Figure:
    """The 10 class probabilities of one digit; a wrong prediction red, the truth (or, with
    no truth known, the prediction) green."""
    right = predicted if truth is None else truth
    colors = [PALETTE[2] if d == right else PALETTE[1] if d == predicted else "#b0b0b0" for d in range(len(probs))]
    fig = go.Figure(
        go.Bar(x=[str(d) for d in range(len(probs))], y=probs, marker_color=colors,
               text=[f"{p:.0%}" if p >= 0.01 else "" for p in probs], textposition="outside")
    )  # fmt: skip
    fig.update_yaxes(range=[0, 1.12], tickformat=".0%", title="probability")
    fig.update_xaxes(type="category", title="class")
    fig.update_layout(title="What the net believes", **{**LAYOUT, "height": 300})
    return fig


def robust_limit(values: np.ndarray, percentile: float = 99.0) -> float:
    """A colour range +-limit for a signed map: the 99th percentile of |values|, so that a
    few dominant pixels saturate instead of washing out all the others (else the largest
    magnitude; 1 for an all-zero map)."""
    magnitude = np.abs(np.asarray(values, dtype=np.float64)).ravel()
    limit = float(np.percentile(magnitude, percentile)) if magnitude.size else 0.0
    return limit if limit > 0 else float(magnitude.max(initial=0.0)) or 1.0


def evidence_figure(image: np.ndarray, evidence: np.ndarray, toward: int, away_from: int) -> go.Figure:
    """The digit and the pixels that pushed the net toward `toward` (red) rather than
    `away_from` (blue), side by side, both 28x28 and crisp. The colours span a robust range
    symmetric around zero (`robust_limit`); the hover shows each pixel's true value."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("The digit", f"Evidence for {toward} over {away_from}"),
                        horizontal_spacing=0.04)  # fmt: skip
    fig.add_trace(go.Heatmap(z=image.reshape(28, 28), colorscale="gray_r", zmin=0, zmax=1, showscale=False,
                             hoverinfo="skip"), row=1, col=1)  # fmt: skip
    limit = robust_limit(evidence)
    fig.add_trace(go.Heatmap(z=evidence.reshape(28, 28), colorscale="RdBu_r", zmin=-limit, zmax=limit,
                             showscale=False, hovertemplate="%{z:.3f}<extra></extra>"), row=1, col=2)  # fmt: skip
    fig.update_yaxes(autorange="reversed", visible=False, scaleanchor="x")
    fig.update_yaxes(scaleanchor="x2", row=1, col=2)
    fig.update_xaxes(visible=False)
    fig.update_layout(margin=dict(l=0, r=0, t=30, b=0), height=300, plot_bgcolor="white")
    return fig


def input_figure(x: np.ndarray, height: int = 280) -> go.Figure:
    """The 28x28 image the net receives, large and crisp (one square per pixel)."""
    hover = "row %{y}, col %{x}: %{z:.2f}<extra></extra>"
    fig = go.Figure(
        go.Heatmap(z=x.reshape(28, 28), colorscale="gray", zmin=0, zmax=1, showscale=False, hovertemplate=hover)
    )
    fig.update_yaxes(autorange="reversed", visible=False, scaleanchor="x", constrain="domain")
    fig.update_xaxes(visible=False, constrain="domain")
    fig.update_layout(margin=dict(l=0, r=0, t=0, b=0), height=height, width=height, plot_bgcolor="black")
    return fig


LAYER_COLORS = {"W1": PALETTE[0], "W2": PALETTE[4]}


def health_figure(health: Sequence[EpochHealth]) -> go.Figure:
    """The net's health by epoch: gradient size per weight and update size relative to the
    weights (log scales, per layer), and below them the share of dead (ReLU) or saturated
    units. Two columns at most: the live column is about 330 px wide in a 1024 px window."""
    units = "dead units" if health and health[-1].dead_share is not None else "saturated units"
    titles = ("Gradient per weight", "Step / weight", f"Share of {units}")
    fig = make_subplots(rows=2, cols=2, specs=[[{}, {}], [{"colspan": 2}, None]], subplot_titles=titles,
                        horizontal_spacing=0.2, vertical_spacing=0.2)  # fmt: skip
    epochs = [h.epoch + 1 for h in health]
    for layer, color in LAYER_COLORS.items():
        for col, values in ((1, [h.grad_rms[layer] for h in health]), (2, [h.update_ratio[layer] for h in health])):
            fig.add_trace(go.Scatter(x=epochs, y=values, mode="lines+markers", name=layer, legendgroup=layer,
                                     showlegend=col == 1, line=dict(color=color), marker=dict(size=5),
                                     hovertemplate=f"{layer}, epoch %{{x}}: %{{y:.2e}}<extra></extra>"),
                          row=1, col=col)  # fmt: skip
    share = [h.dead_share if h.dead_share is not None else h.saturated_share for h in health]
    fig.add_trace(go.Scatter(x=epochs, y=share, mode="lines+markers", name=units, showlegend=False,
                             line=dict(color=PALETTE[1]), marker=dict(size=5),
                             hovertemplate="epoch %{x}: %{y:.1%}<extra></extra>"), row=2, col=1)  # fmt: skip
    fig.add_hline(y=1e-3, line=dict(color="#999", dash="dot", width=1), row=1, col=2)  # the usual healthy size
    for col in (1, 2):
        fig.update_yaxes(type="log", exponentformat="power", nticks=4, row=1, col=col)
    fig.update_yaxes(range=[0, 1], tickformat=".0%", row=2, col=1)
    fig.update_xaxes(dtick=1 if len(epochs) <= 10 else None)
    fig.update_xaxes(title_text="epoch", row=2, col=1)
    fig.update_annotations(font_size=13)
    # The legend on a band of its own at the top, above the subplot titles: at 330 px it would
    # cover "Step / weight" anywhere beside them.
    legend = dict(orientation="h", yref="container", y=1, yanchor="top", x=1, xanchor="right")
    fig.update_layout(**{**LAYOUT, "height": 440, "margin": {**LAYOUT["margin"], "t": 70}, "legend": legend})
    return fig


def histogram_figure(health: EpochHealth) -> go.Figure:
    """W1's and W2's weights after one epoch (bars) against their initial spread (a line)."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("W1 weights", "W2 weights"), horizontal_spacing=0.12)
    for col, (layer, color) in enumerate(LAYER_COLORS.items(), start=1):
        h = health.histograms[layer]
        centres = [(a + b) / 2 for a, b in zip(h.edges, h.edges[1:], strict=False)]
        width = h.edges[1] - h.edges[0]
        fig.add_trace(go.Bar(x=centres, y=h.counts, width=width, marker_color=color, showlegend=col == 1,
                             name=f"after epoch {health.epoch + 1}", legendgroup="now",
                             hovertemplate="%{x:.3g}: %{y:,}<extra></extra>"), row=1, col=col)  # fmt: skip
        fig.add_trace(go.Scatter(x=centres, y=h.initial, mode="lines", line=dict(color="#333", dash="dot", shape="hvh"),
                                 name="initial", showlegend=col == 1, legendgroup="initial",
                                 hovertemplate="%{x:.3g}: %{y:,} at start<extra></extra>"), row=1, col=col)  # fmt: skip
    fig.update_xaxes(nticks=4, tickangle=0)
    fig.update_annotations(font_size=13)
    fig.update_layout(**{**LAYOUT, "height": 280, "bargap": 0, "legend": dict(orientation="h", y=-0.15)})
    return fig
