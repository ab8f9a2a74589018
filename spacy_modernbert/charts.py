"""Dependency-free charts as SVG: panels of lines, points or bars laid out on one page.

Used by `plot-training` (loss and score curves) and `sweep` (optimisation history,
score against each parameter, trial curves, parameter importances). No matplotlib: the
project's installs stay small and the files open in any browser.
"""

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Sequence, Tuple
from xml.sax.saxutils import escape

WIDTH, HEIGHT = 420, 300
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 30, 40
COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]


@dataclass
class Series:
    """One set of points. lines: join them; points: mark each one."""

    label: str
    xs: Sequence[float]
    ys: Sequence[float]
    lines: bool = True
    points: bool = False
    colour: Optional[str] = None


@dataclass
class Panel:
    """One chart: a title, axis labels and its series (or bars: label -> value)."""

    title: str
    xlabel: str = ""
    ylabel: str = ""
    series: List[Series] = field(default_factory=list)
    bars: List[Tuple[str, float]] = field(default_factory=list)
    log_x: bool = False


def nice_ticks(low: float, high: float, count: int = 5) -> List[float]:
    """About `count` round tick values covering [low, high]."""
    if high <= low:
        return [low]
    raw = (high - low) / max(1, count - 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.floor(low / step) * step
    ticks = []
    value = first
    while value <= high + step * 1e-9:
        if value >= low - step * 1e-9:
            ticks.append(round(value, 12))
        value += step
    return ticks


def _label(value: float) -> str:
    return f"{value:.3g}"


def _extent(values: Sequence[float]) -> Tuple[float, float]:
    low, high = min(values), max(values)
    if low == high:
        pad = abs(low) * 0.1 or 1.0
        return low - pad, high + pad
    return low, high


def _render_xy(panel: Panel, ox: float, oy: float) -> List[str]:
    inner_w, inner_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    drawn = [s for s in panel.series if len(s.xs)]
    out: List[str] = []
    if not drawn:
        out.append(
            f'<text x="{ox + WIDTH / 2}" y="{oy + HEIGHT / 2}" text-anchor="middle">no data</text>'
        )
        return out
    transform = (lambda v: math.log10(v)) if panel.log_x else (lambda v: float(v))
    x_low, x_high = _extent([transform(x) for s in drawn for x in s.xs])
    y_low, y_high = _extent([float(y) for s in drawn for y in s.ys])

    def px(x: float) -> float:
        return ox + LEFT + (transform(x) - x_low) / (x_high - x_low) * inner_w

    def py(y: float) -> float:
        return oy + TOP + (1 - (y - y_low) / (y_high - y_low)) * inner_h

    x0, y0 = ox + LEFT, oy + TOP + inner_h
    out.append(
        f'<polyline fill="none" stroke="black" points="{x0},{oy + TOP} {x0},{y0} {x0 + inner_w},{y0}"/>'
    )
    for tick in nice_ticks(y_low, y_high):
        out.append(
            f'<line x1="{x0 - 4}" y1="{py(tick):.1f}" x2="{x0}" y2="{py(tick):.1f}" stroke="black"/>'
        )
        out.append(
            f'<text x="{x0 - 6}" y="{py(tick) + 4:.1f}" text-anchor="end">{_label(tick)}</text>'
        )
    for tick in nice_ticks(x_low, x_high):
        value = 10**tick if panel.log_x else tick
        x = ox + LEFT + (tick - x_low) / (x_high - x_low) * inner_w
        out.append(f'<line x1="{x:.1f}" y1="{y0}" x2="{x:.1f}" y2="{y0 + 4}" stroke="black"/>')
        out.append(f'<text x="{x:.1f}" y="{y0 + 16}" text-anchor="middle">{_label(value)}</text>')
    for k, s in enumerate(drawn):
        colour = s.colour or COLOURS[k % len(COLOURS)]
        points = [(px(x), py(float(y))) for x, y in zip(s.xs, s.ys)]
        if s.lines and len(points) > 1:
            coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
            out.append(
                f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{coords}"/>'
            )
        if s.points or len(points) == 1:
            out += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"/>' for x, y in points]
    labelled = [(k, s) for k, s in enumerate(drawn) if s.label]
    for row, (k, s) in enumerate(labelled[:8]):
        colour = s.colour or COLOURS[k % len(COLOURS)]
        y = oy + TOP + 10 + 13 * row
        out.append(
            f'<rect x="{ox + WIDTH - RIGHT - 110}" y="{y - 8}" width="8" height="8" fill="{colour}"/>'
        )
        out.append(f'<text x="{ox + WIDTH - RIGHT - 98}" y="{y}">{escape(s.label)}</text>')
    return out


def _render_bars(panel: Panel, ox: float, oy: float) -> List[str]:
    inner_w, inner_h = WIDTH - LEFT - RIGHT - 80, HEIGHT - TOP - BOTTOM
    top = max([value for _, value in panel.bars] + [1e-12])
    height = inner_h / max(1, len(panel.bars))
    out = []
    for k, (name, value) in enumerate(panel.bars):
        y = oy + TOP + k * height
        w = value / top * inner_w
        out.append(
            f'<text x="{ox + LEFT + 76}" y="{y + height / 2 + 4:.1f}" text-anchor="end">{escape(name[-24:])}</text>'
        )
        out.append(
            f'<rect x="{ox + LEFT + 80}" y="{y + 2:.1f}" width="{w:.1f}" height="{max(1.0, height - 4):.1f}" fill="{COLOURS[0]}"/>'
        )
        out.append(
            f'<text x="{ox + LEFT + 84 + w:.1f}" y="{y + height / 2 + 4:.1f}">{value:.2f}</text>'
        )
    return out


def render_panel(panel: Panel, ox: float = 0, oy: float = 0) -> str:
    """The SVG elements of one panel with its top-left corner at (ox, oy)."""
    out = [
        f'<text x="{ox + WIDTH / 2}" y="{oy + 18}" text-anchor="middle" font-size="13">{escape(panel.title)}</text>',
        f'<text x="{ox + LEFT + (WIDTH - LEFT - RIGHT) / 2}" y="{oy + HEIGHT - 6}" text-anchor="middle">{escape(panel.xlabel)}</text>',
        f'<text x="{ox + 12}" y="{oy + TOP + (HEIGHT - TOP - BOTTOM) / 2}" text-anchor="middle" '
        f'transform="rotate(-90 {ox + 12} {oy + TOP + (HEIGHT - TOP - BOTTOM) / 2})">{escape(panel.ylabel)}</text>',
    ]
    out += _render_bars(panel, ox, oy) if panel.bars else _render_xy(panel, ox, oy)
    return "\n".join(out)


def write_svg(path: Path, panels: Sequence[Panel], columns: int = 2) -> Path:
    """Write the panels as one SVG page, `columns` to a row."""
    path = Path(path)
    columns = max(1, min(columns, len(panels)))
    rows = max(1, math.ceil(len(panels) / columns))
    width, height = columns * WIDTH, rows * HEIGHT
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="11">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
    ]
    for k, panel in enumerate(panels):
        parts.append(render_panel(panel, (k % columns) * WIDTH, (k // columns) * HEIGHT))
    parts.append("</svg>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts) + "\n", encoding="utf8")
    return path
