"""Dependency-free line charts as SVG (the ROC and precision-recall curves `evaluate` writes).

Not a command: it lives beside `curves.py`, which computes the points it draws.
"""

from pathlib import Path
from typing import List, Optional, Sequence, Tuple
from xml.sax.saxutils import escape

SIZE, MARGIN = 360, 48


def _xy(x: float, y: float) -> str:
    inner = SIZE - 2 * MARGIN
    return f"{MARGIN + x * inner:.1f},{SIZE - MARGIN - y * inner:.1f}"


def pr_step_points(
    precision: Sequence[float], recall: Sequence[float]
) -> Tuple[List[float], List[float]]:
    """The precision-recall curve as the step function average precision integrates.

    Each threshold that adds recall contributes a step at its precision, from the previous
    recall to its own; thresholds that only add false positives add no step (plotting them
    drew a drop to precision 0 at recall 0 when the top-scored documents were normal). The
    area under the returned points is the average precision.
    """
    xs: List[float] = []
    ys: List[float] = []
    previous = 0.0
    for p, r in zip(precision, recall):
        if r > previous:
            xs += [previous, float(r)]
            ys += [float(p), float(p)]
            previous = float(r)
    return xs, ys


def write_curve_svg(
    path: Path,
    xs: Sequence[float],
    ys: Sequence[float],
    title: str,
    xlabel: str,
    ylabel: str,
    diagonal: bool = False,
    baseline: Optional[Tuple[float, str]] = None,
) -> Path:
    """Write one curve on the unit square, with axes, ticks and labels, as an SVG file.

    diagonal (bool): draw the chance line y = x (ROC).
    baseline (Optional[Tuple[float, str]]): a dashed horizontal line at this height with this
        label, e.g. the prevalence of anomalies, which is what chance scores get as precision.
    """
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{SIZE}" height="{SIZE}" font-family="sans-serif" font-size="11">',
        f'<rect width="{SIZE}" height="{SIZE}" fill="white"/>',
        f'<text x="{SIZE / 2}" y="20" text-anchor="middle" font-size="13">{escape(title)}</text>',
        f'<polyline fill="none" stroke="black" points="{_xy(0, 1)} {_xy(0, 0)} {_xy(1, 0)}"/>',
    ]
    for t in (0.0, 0.25, 0.5, 0.75, 1.0):
        x0, y0 = _xy(t, 0).split(",")
        x1, y1 = _xy(0, t).split(",")
        parts.append(f'<text x="{x0}" y="{float(y0) + 14}" text-anchor="middle">{t:g}</text>')
        parts.append(
            f'<text x="{float(x1) - 6}" y="{float(y1) + 4}" text-anchor="end">{t:g}</text>'
        )
    parts.append(
        f'<text x="{SIZE / 2}" y="{SIZE - 10}" text-anchor="middle">{escape(xlabel)}</text>'
    )
    parts.append(
        f'<text x="14" y="{SIZE / 2}" text-anchor="middle" transform="rotate(-90 14 {SIZE / 2})">{escape(ylabel)}</text>'
    )
    if diagonal:
        parts.append(
            f'<polyline fill="none" stroke="#aaa" stroke-dasharray="4" points="{_xy(0, 0)} {_xy(1, 1)}"/>'
        )
    if baseline is not None:
        height, label = baseline
        x1, y1 = _xy(1, height).split(",")
        parts.append(
            f'<polyline fill="none" stroke="#aaa" stroke-dasharray="4" points="{_xy(0, height)} {_xy(1, height)}"/>'
        )
        parts.append(
            f'<text x="{x1}" y="{float(y1) - 4}" text-anchor="end" fill="#777">{escape(label)}</text>'
        )
    points = " ".join(_xy(float(x), float(y)) for x, y in zip(xs, ys))
    parts.append(f'<polyline fill="none" stroke="#1f77b4" stroke-width="2" points="{points}"/>')
    parts.append("</svg>")
    path.write_text("\n".join(parts), encoding="utf8")
    return path
