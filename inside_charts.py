"""Pure Plotly builders for the Inside page: a digit through the net, the map, calibration,
spoiled digits. Data in, figure out; no Streamlit, no state."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from charts import LAYOUT, grey_png, tile
from nets.calibration import ConfidenceHistograms, Coverage, CoverageCurve, Reliability
from nets.inside import Reading
from nets.robustness import Curve

FOR, AGAINST, OFF, RIGHT = "#d62728", "#1f77b4", "#b0b0b0", "#2ca02c"
HALO = "0 0 2px white, 0 0 2px white, 0 0 3px white"  # a CSS text-shadow: text stays readable over lines
DIGIT_COLOURS = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
)  # fmt: skip
WIDTH_BINS = 5  # links are drawn in this many widths per colour: a trace each, not one per link


def _links(fig: go.Figure, segments: list, color: str, name: str) -> None:
    """Line segments ((x0, y0, x1, y1, strength 0-1)) in WIDTH_BINS traces of growing width."""
    for b in range(WIDTH_BINS):
        chosen = [s for s in segments if min(int(s[4] * WIDTH_BINS), WIDTH_BINS - 1) == b]
        if not chosen:
            continue
        xs = [v for s in chosen for v in (s[0], s[2], None)]
        ys = [v for s in chosen for v in (s[1], s[3], None)]
        fig.add_trace(
            go.Scatter(x=xs, y=ys, mode="lines", line=dict(color=color, width=0.8 + 2.2 * b),
                       opacity=0.35 + 0.13 * b, hoverinfo="skip", showlegend=False, name=name)
        )  # fmt: skip


def diagram_figure(x: np.ndarray, whole: Reading, now: Reading, units: Sequence[int], selected: int | None):
    """Input -> `units` -> 10 outputs. Links from the input are as thick as the unit's
    activation; links to an output are as thick as the unit's contribution to that score,
    red when it pushes the score up, blue when down. `whole` is the net as trained (it
    chose the units), `now` the net with its switched-off units (drawn grey, no links)."""
    units = list(units)
    n = len(units)
    classes = len(now.logits)
    unit_y = np.linspace(0, classes - 1, n) if n > 1 else np.array([(classes - 1) / 2])
    fig = go.Figure()
    fig.add_layout_image(
        source=grey_png(1 - x.reshape(28, 28)),
        xref="x",
        yref="y",
        x=-1.05,
        y=(classes - 1) / 2 - 1.6,
        sizex=1.0,
        sizey=3.2,
        sizing="contain",
        layer="below",
    )  # fmt: skip — the digit bright on black, as the net receives it
    peak_h = max(float(whole.hidden[units].max(initial=0.0)), 1e-9)
    _links(fig, [(0.0, (classes - 1) / 2, 1, y, now.hidden[u] / peak_h) for u, y in zip(units, unit_y, strict=True)
                 if now.hidden[u] > 0], "#7f7f7f", "input")  # fmt: skip
    shares = now.contributions[units]  # (n, C)
    peak = max(float(np.abs(whole.contributions[units]).max(initial=0.0)), 1e-9)
    ups, downs = [], []
    for i, y in enumerate(unit_y):
        for c in range(classes):
            s = shares[i, c] / peak
            if abs(s) >= 0.08:
                (ups if s > 0 else downs).append((1.0, y, 2.0, c, abs(s)))
    _links(fig, downs, AGAINST, "against")
    _links(fig, ups, FOR, "for")
    predicted = whole.predicted
    toward = whole.contributions[units, predicted]
    off = set(now.silenced)
    colors = [OFF if u in off else FOR if t > 0 else AGAINST for u, t in zip(units, toward, strict=True)]
    fig.add_trace(
        go.Scatter(
            x=[1] * n, y=unit_y.tolist(), mode="markers+text", customdata=units,
            marker=dict(size=[24 if u == selected else 18 for u in units], color=colors,
                        line=dict(color=["black" if u == selected else "white" for u in units], width=2),
                        symbol=["x" if u in off else "circle" for u in units]),
            # A space keeps each number clear of its node, and a white halo keeps it readable over
            # the links that meet there (at 1024 px wide the grey ones covered it).
            text=[f"{u}\u00a0" for u in units], textposition="middle left",
            textfont=dict(size=11, color="#444", shadow=HALO),
            hovertext=[f"unit {u}{' (off)' if u in off else ''}: activation {whole.hidden[u]:.2f}, "
                       f"{t:+.2f} to the score of {predicted}" for u, t in zip(units, toward, strict=True)],
            hoverinfo="text", showlegend=False, name="units",
        )
    )  # fmt: skip
    probs = now.probs
    guess = now.predicted
    fig.add_trace(
        go.Scatter(
            x=[2] * classes, y=list(range(classes)), mode="markers+text",
            marker=dict(size=[12 + 26 * p for p in probs], line=dict(color="white", width=1),
                        color=[RIGHT if c == guess else "#d0d0d0" for c in range(classes)]),
            text=[f"{c}  {p:.0%}" if p >= 0.005 else f"{c}" for c, p in enumerate(probs)], textposition="middle right",
            textfont=dict(size=13), hovertext=[f"{c}: score {now.logits[c]:.2f}, probability {p:.1%}"
                                               for c, p in enumerate(probs)],
            hoverinfo="text", showlegend=False, name="outputs", cliponaxis=False,
        )
    )  # fmt: skip
    # The scores' labels ("7  100%") run into a right margin of their own: inside the axes they
    # were cut in a narrow column.
    fig.update_xaxes(range=[-1.15, 2.3], visible=False, fixedrange=True)
    fig.update_yaxes(range=[classes - 0.4, -0.6], visible=False, fixedrange=True)
    fig.update_layout(
        margin=dict(l=0, r=64, t=30, b=0), height=420, plot_bgcolor="white", dragmode=False, clickmode="event+select",
        title=dict(text="input → the units that matter most → the 10 scores", font=dict(size=14)),
    )  # fmt: skip
    for xpos, text in ((-0.55, "the digit"), (1, "hidden units"), (2.05, "outputs")):
        fig.add_annotation(x=xpos, y=classes - 0.4, text=text, showarrow=False, yanchor="bottom", font=dict(size=11))
    return fig


def unit_weights_figure(W1: np.ndarray, units: Sequence[int], captions: Sequence[str], columns: int = 3) -> go.Figure:
    """The first-layer weights of `units` as 28x28 images (red excites, blue inhibits, each
    unit scaled to its own range), captioned; click one to pick its unit."""
    units = list(units)
    fig = go.Figure()
    if not units:
        fig.update_layout(height=40, margin=dict(l=0, r=0, t=0, b=0))
        return fig
    images = W1[:, units].T.reshape(len(units), 28, 28).astype(np.float64)
    scale = np.abs(images).max(axis=(1, 2), keepdims=True)
    gap = 12
    mosaic = tile(images / np.where(scale > 0, scale, 1), columns, gap=gap)
    fig.add_trace(go.Heatmap(z=mosaic, colorscale="RdBu_r", zmin=-1, zmax=1, showscale=False, hoverinfo="skip"))
    cells = [divmod(i, columns) for i in range(len(units))]
    pitch = 28 + gap
    fig.add_trace(
        go.Scatter(
            x=[c * pitch + 13.5 for _, c in cells], y=[r * pitch + 13.5 for r, _ in cells], mode="markers",
            marker=dict(symbol="square", size=40, opacity=0.01, color="black"), customdata=units,
            hovertext=[f"unit {u}" for u in units], hoverinfo="text", showlegend=False,
        )
    )  # fmt: skip
    fig.update_layout(
        annotations=[dict(x=c * pitch + 13.5, y=r * pitch + 28.5, yanchor="top", text=t, showarrow=False,
                          font=dict(size=11)) for (r, c), t in zip(cells, captions, strict=True)]
    )  # fmt: skip
    rows = cells[-1][0] + 1
    fig.update_yaxes(range=[rows * pitch - 0.5, -0.5], visible=False, scaleanchor="x", fixedrange=True)
    fig.update_xaxes(range=[-0.5, columns * pitch - gap - 0.5], visible=False, fixedrange=True)
    fig.update_layout(margin=dict(l=0, r=0, t=0, b=0), height=30 + 125 * rows, plot_bgcolor="white", dragmode=False)
    return fig


def map_figure(
    points: np.ndarray,
    labels: np.ndarray,
    predictions: np.ndarray,
    explained: np.ndarray,
    star: np.ndarray | None = None,
    star_text: str = "",
) -> go.Figure:
    """The test set on the hidden layer's 2-D map: one colour per true digit, mistakes as
    black crosses over their dot, the chosen digit as a star. Click a point to pick it."""
    fig = go.Figure()
    xy = points.astype(np.float32)  # half the bytes of float64, more than a screen's precision
    # One WebGL trace for all the dots (each trace costs the browser a draw of its own, and
    # software WebGL makes that count); the legend's keys are empty traces of each colour.
    steps = [[edge, c] for d, c in enumerate(DIGIT_COLOURS) for edge in (d / 10, (d + 1) / 10)]  # one colour a digit
    fig.add_trace(
        go.Scattergl(
            x=xy[:, 0], y=xy[:, 1], mode="markers", name="digits", customdata=np.arange(len(xy)),
            marker=dict(size=4, color=labels.astype(np.int8), colorscale=steps, cmin=-0.5, cmax=9.5, opacity=0.6),
            showlegend=False,  # the colour is the label, so the hover reads it there (no 10,000 strings to send)
            hovertemplate="#%{customdata}: a %{marker.color}<extra></extra>",
        )
    )  # fmt: skip
    for d in range(10):
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=str(d), hoverinfo="skip",
                                 marker=dict(size=8, color=DIGIT_COLOURS[d])))  # fmt: skip
    wrong = np.flatnonzero(predictions != labels)
    fig.add_trace(
        go.Scattergl(
            x=xy[wrong, 0], y=xy[wrong, 1], mode="markers", name="mistakes", customdata=wrong,
            marker=dict(size=6, symbol="x-thin", color="black", line=dict(width=1.5, color="black")),
            text=[f"#{i}: a {labels[i]}, read as {predictions[i]}" for i in wrong],
            hovertemplate="%{text}<extra></extra>",
        )
    )  # fmt: skip
    if star is not None:  # WebGL too: an SVG trace would be drawn under the WebGL dots
        fig.add_trace(
            go.Scattergl(
                x=[float(star[0])], y=[float(star[1])], mode="markers", name=star_text or "your digit",
                marker=dict(size=22, symbol="star", color="gold", line=dict(color="black", width=1.5)),
                hovertemplate=f"{star_text or 'your digit'}<extra></extra>",
            )
        )  # fmt: skip
    fig.update_xaxes(title=f"first component ({explained[0]:.0%} of the variance)", zeroline=False)
    fig.update_yaxes(title=f"second component ({explained[1]:.0%})", zeroline=False)
    # The legend in its own band above the plot: on the right it took a third of a narrow column.
    legend = dict(title="true digit", itemsizing="constant", orientation="h", yref="container", y=1, yanchor="top", x=0)
    fig.update_layout(**{**LAYOUT, "height": 520, "legend": legend, "margin": dict(l=50, r=10, t=80, b=40)},
                      dragmode="zoom", clickmode="event+select")  # fmt: skip
    return fig


def reliability_figure(r: Reliability) -> go.Figure:
    """Accuracy in each confidence bin against the diagonal a calibrated net would follow."""
    centres = (r.edges[:-1] + r.edges[1:]) / 2
    filled = r.counts > 0
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line=dict(color="#909090", dash="dash"),
                             name="calibrated", hoverinfo="skip"))  # fmt: skip
    fig.add_trace(
        go.Bar(
            x=centres[filled], y=r.accuracy[filled], width=(r.edges[1] - r.edges[0]) * 0.9, name="accuracy",
            marker_color="#1f77b4", customdata=np.c_[r.counts[filled], r.confidence[filled]],
            hovertemplate="confidence %{customdata[1]:.1%}: %{y:.1%} right of %{customdata[0]:,} digits<extra></extra>",
        )
    )  # fmt: skip
    fig.add_trace(
        go.Scatter(x=r.confidence[filled], y=r.confidence[filled], mode="markers", name="mean confidence",
                   marker=dict(color=FOR, size=7, symbol="diamond"), hoverinfo="skip")
    )  # fmt: skip
    fig.update_xaxes(range=[0, 1], tickformat=".0%", title="confidence")
    fig.update_yaxes(range=[0, 1.02], tickformat=".0%", title="fraction right")
    fig.update_layout(title=f"Reliability (ECE {r.ece:.2%})", **{**LAYOUT, "height": 360})
    return fig


def confidence_histogram_figure(h: ConfidenceHistograms) -> go.Figure:
    """How sure the net was of its right and of its wrong answers (log scale: the wrong are few)."""
    centres = (h.edges[:-1] + h.edges[1:]) / 2
    fig = go.Figure()
    for counts, name, color in ((h.right, "right", RIGHT), (h.wrong, "wrong", FOR)):
        fig.add_trace(go.Bar(x=centres, y=counts, name=name, marker_color=color, opacity=0.8,
                             width=(h.edges[1] - h.edges[0]) * 0.9,
                             hovertemplate=f"{name}: %{{y:,}} at %{{x:.0%}}<extra></extra>"))  # fmt: skip
    fig.update_xaxes(range=[0, 1], tickformat=".0%", title="confidence")
    fig.update_yaxes(type="log", title="digits")
    fig.update_layout(title="Right and wrong, by confidence", barmode="overlay", **{**LAYOUT, "height": 360})
    return fig


def coverage_figure(curve: CoverageCurve, point: Coverage) -> go.Figure:
    """Accuracy of the answers given against the fraction answered, and the chosen threshold on it."""
    fig = go.Figure(
        go.Scatter(x=curve.coverage, y=curve.accuracy, mode="lines", line=dict(color="#1f77b4"), name="thresholds",
                   customdata=curve.thresholds,
                   hovertemplate="at %{customdata:.1%}: answers %{x:.1%}, %{y:.2%} right<extra></extra>")
    )  # fmt: skip
    fig.add_trace(
        go.Scatter(x=[point.coverage], y=[point.accuracy], mode="markers", name=f"threshold {point.threshold:.0%}",
                   marker=dict(size=13, color=FOR, line=dict(color="white", width=1.5)),
                   hovertemplate="answers %{x:.1%}, %{y:.2%} right<extra></extra>")
    )  # fmt: skip
    low = float(min(curve.accuracy.min(initial=1.0), point.accuracy))
    fig.update_xaxes(range=[0, 1.02], tickformat=".0%", title="coverage (digits answered)")
    fig.update_yaxes(range=[max(0.0, low - 0.01), 1.002], tickformat=".1%", title="accuracy of the answers")
    fig.update_layout(title="What a threshold trades", **{**LAYOUT, "height": 360})
    return fig


KIND_TITLES = {"noise": "Gaussian noise (σ)", "rotation": "Rotation (degrees)", "thickness": "Stroke (px steps)"}


def robustness_figure(curves: Sequence[Curve], chosen: dict[str, float], chosen_accuracy: dict[str, float]):
    """Accuracy against each kind of spoiling, side by side, the chosen strengths marked."""
    fig = make_subplots(rows=1, cols=len(curves), subplot_titles=[KIND_TITLES.get(c.kind, c.kind) for c in curves],
                        shared_yaxes=True, horizontal_spacing=0.05)  # fmt: skip
    for col, curve in enumerate(curves, start=1):
        fig.add_trace(go.Scatter(x=curve.strengths, y=curve.accuracy, mode="lines+markers", showlegend=False,
                                 line=dict(color="#1f77b4"), hovertemplate="%{x:g}: %{y:.1%}<extra></extra>"),
                      row=1, col=col)  # fmt: skip
        if curve.kind in chosen:
            fig.add_trace(go.Scatter(x=[chosen[curve.kind]], y=[chosen_accuracy[curve.kind]], mode="markers",
                                     marker=dict(size=12, color=FOR), showlegend=False,
                                     hovertemplate="chosen: %{y:.1%}<extra></extra>"), row=1, col=col)  # fmt: skip
    fig.update_yaxes(range=[0, 1.02], tickformat=".0%")
    fig.update_yaxes(title="test accuracy", row=1, col=1)
    fig.update_layout(**{**LAYOUT, "height": 320, "margin": dict(l=50, r=10, t=40, b=30)})
    return fig


def spoiled_png_grid(images: np.ndarray, columns: int = 8) -> str:
    """A row or two of (spoiled) digits as one PNG data URI, ink dark on white."""
    return grey_png(tile(images.reshape(-1, 28, 28), columns, gap=2, fill=0.0))
