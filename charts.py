"""Pure Plotly figure builders: data in, figure out. No Streamlit, no state."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

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


def training_figure(series: Sequence[Series], epochs: int | None = None) -> go.Figure:
    """Loss and accuracy by epoch, side by side; one colour per run, one dash per split.

    Solid = train, dashed = validation, dotted = test. One figure, not two, because the
    browser redraws it every second while a run trains.
    """
    fig = make_subplots(rows=1, cols=2, subplot_titles=("Loss (cross-entropy)", "Accuracy"), horizontal_spacing=0.1)
    for s in series:
        _lines(fig, s, LOSS_FIELDS, col=1, legend=False)
        _lines(fig, s, ACCURACY_FIELDS, col=2, legend=True)
    fig.update_xaxes(title_text="epoch")
    fig.update_yaxes(tickformat=".1%", row=1, col=2)
    if epochs:
        fig.update_xaxes(range=[0.5, epochs + 0.5], dtick=1 if epochs <= 15 else None)
    fig.update_layout(**{**LAYOUT, "height": 380})
    return fig


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
        title=f"What {len(units)} hidden units look for (first-layer weights)",
        margin=dict(l=0, r=0, t=40, b=0),
        height=60 + 40 * (-(-len(units) // columns)),
        plot_bgcolor="white",
    )
    return fig


def digits_figure(images: np.ndarray, labels: Sequence[str], columns: int = 10) -> go.Figure:
    """A grid of 28x28 digits (N, 784), each captioned below, crisp (no smoothing)."""
    n, gap = len(images), 12
    rows = -(-n // columns)
    mosaic = tile(images.reshape(n, 28, 28), columns, gap=gap, fill=0.0)
    fig = go.Figure(
        go.Heatmap(z=mosaic, colorscale="gray_r", zmin=0, zmax=1, showscale=False, hoverinfo="skip", zsmooth=False)
    )
    pitch = 28 + gap
    for i, label in enumerate(labels):
        r, c = divmod(i, columns)
        fig.add_annotation(
            x=c * pitch + 13.5, y=r * pitch + 28 + gap / 2, text=label, showarrow=False, font=dict(size=13)
        )
    fig.update_yaxes(range=[rows * pitch, -1], visible=False, scaleanchor="x")
    fig.update_xaxes(range=[-1, columns * pitch - gap + 1], visible=False)
    fig.update_layout(margin=dict(l=0, r=0, t=10, b=0), height=40 + 70 * rows, plot_bgcolor="white")
    return fig


def class_counts_figure(labels: np.ndarray, title: str) -> go.Figure:
    counts = np.bincount(labels, minlength=10)
    fig = go.Figure(go.Bar(x=[str(d) for d in range(10)], y=counts, text=counts, marker_color=PALETTE[0]))
    fig.update_layout(title=title, xaxis_title="digit", yaxis_title="images", **{**LAYOUT, "height": 300})
    fig.update_xaxes(type="category")
    return fig
