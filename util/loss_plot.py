"""Loss and metric curves drawn as a standalone SVG file: no plotting library, so every install has the plot.

One panel per history (losses, then metrics), a shared step axis per panel, a legend, and a few labelled
ticks. Browsers render SVG natively, so the training page shows it like any image.
"""

from __future__ import annotations

import math
import os
from html import escape

History = dict[str, tuple[list[int], list[float]]]

# Matplotlib's default cycle: familiar to anyone who has looked at the official loss plots.
COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22"]
WIDTH, PANEL_H = 900, 300
LEFT, RIGHT, TOP, BOTTOM = 70, 170, 30, 40


def nice_ticks(lo: float, hi: float, count: int = 6) -> list[float]:
    """About ``count`` round tick values covering [lo, hi] (1, 2 or 5 times a power of ten apart)."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo] if math.isfinite(lo) else []
    raw = (hi - lo) / max(count - 1, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]


def _fmt(v: float) -> str:
    return f"{v:.4g}"


def _panel(history: History, title: str, y0: int) -> list[str]:
    """SVG elements of one panel whose top edge is at ``y0``; non-finite values are left out of the line."""
    points = [(s, v) for steps, vals in history.values() for s, v in zip(steps, vals) if math.isfinite(v)]
    if not points:
        return [f'<text x="{LEFT}" y="{y0 + TOP}">{escape(title)}: no finite values</text>']
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x_lo, x_hi = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
    y_lo, y_hi = min(ys), max(ys)
    if y_hi <= y_lo:
        y_lo, y_hi = y_lo - 0.5, y_hi + 0.5
    pw, ph = WIDTH - LEFT - RIGHT, PANEL_H - TOP - BOTTOM

    def px(s: float) -> float:
        return LEFT + (s - x_lo) / (x_hi - x_lo) * pw

    def py(v: float) -> float:
        return y0 + TOP + (1 - (v - y_lo) / (y_hi - y_lo)) * ph

    out = [
        f'<text x="{LEFT}" y="{y0 + TOP - 10}" font-weight="bold">{escape(title)}</text>',
        f'<rect x="{LEFT}" y="{y0 + TOP}" width="{pw}" height="{ph}" fill="none" stroke="#333"/>',
    ]
    for t in nice_ticks(y_lo, y_hi):
        y = py(t)
        out.append(f'<line x1="{LEFT}" x2="{LEFT + pw}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{LEFT - 5}" y="{y + 4:.1f}" text-anchor="end">{_fmt(t)}</text>')
    for t in nice_ticks(x_lo, x_hi):
        x = px(t)
        out.append(f'<text x="{x:.1f}" y="{y0 + TOP + ph + 16}" text-anchor="middle">{_fmt(t)}</text>')
    out.append(f'<text x="{LEFT + pw / 2}" y="{y0 + PANEL_H - 5}" text-anchor="middle">step</text>')
    for i, (name, (steps, vals)) in enumerate(history.items()):
        color = COLORS[i % len(COLORS)]
        pts = " ".join(f"{px(s):.1f},{py(v):.1f}" for s, v in zip(steps, vals) if math.isfinite(v))
        out.append(f'<polyline points="{pts}" fill="none" stroke="{color}" stroke-width="1.2"/>')
        ly = y0 + TOP + 14 * i + 8
        out.append(
            f'<line x1="{WIDTH - RIGHT + 10}" x2="{WIDTH - RIGHT + 30}" y1="{ly}" y2="{ly}" '
            f'stroke="{color}" stroke-width="2"/>'
        )
        out.append(f'<text x="{WIDTH - RIGHT + 35}" y="{ly + 4}">{escape(name)}</text>')
    return out


def render_svg(panels: list[tuple[History, str]]) -> str:
    """The whole figure: one panel per non-empty (history, title), stacked vertically."""
    panels = [(h, t) for h, t in panels if h]
    height = PANEL_H * max(len(panels), 1)
    body = [e for i, (h, t) in enumerate(panels) for e in _panel(h, t, i * PANEL_H)]
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="11">\n'
        f'<rect width="100%" height="100%" fill="white"/>\n' + "\n".join(body) + "\n</svg>\n"
    )


def write_svg(path: str, panels: list[tuple[History, str]]) -> str:
    """Write the figure to ``path`` through a temp file, so a reloading page never reads half a plot."""
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(render_svg(panels))
    os.replace(tmp, path)
    return path
