"""The pictures of ``keraszoo anomaly score``: the most and least anomalous images, and a histogram of the scores.

Drawn with Pillow (a core dependency; no matplotlib needed), written atomically as PNG files.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

__all__ = ["save_extremes", "save_histogram"]

#: Images per row of :func:`save_extremes`.
EXTREMES = 10


def save_extremes(x, scores, path, count=EXTREMES) -> Path:
    """The ``count`` most anomalous images (top row, most anomalous first) above the ``count`` least anomalous ones
    (bottom row, most normal first), as a PNG grid."""
    from keraszoo import visualization as vis

    order = np.argsort(-np.asarray(scores), kind="stable")
    k = max(1, min(int(count), len(order)))
    return vis.save_comparison(np.asarray(x)[order[:k]], np.asarray(x)[order[::-1][:k]], path, ncols=k)


def _ticks(lo, hi, count=5):
    """About ``count`` round tick values covering ``[lo, hi]``."""
    if not hi > lo:
        return [lo]
    raw = (hi - lo) / count
    step = 10 ** math.floor(math.log10(raw))
    step *= next(m for m in (1, 2, 2.5, 5, 10) if step * m >= raw)
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step) + 1)]


def _label(value):
    return f"{value:.4g}"


def save_histogram(scores, threshold, path, *, reference=None, title="anomaly scores", width=720, height=400,
                   bins=40) -> Path:
    """A histogram of ``scores`` with the ``threshold`` as a red line (and ``reference`` scores, the calibration's
    normal images, as a grey outline), higher = more anomalous to the right, as a PNG."""
    from PIL import Image
    from PIL import ImageDraw
    from PIL import ImageFont

    from keraszoo.utils import atomic_path

    scores = np.asarray(scores, "float64")
    every = np.concatenate([scores, [threshold]] + ([np.asarray(reference, "float64")] if reference is not None else []))
    lo, hi = float(np.min(every)), float(np.max(every))
    if not hi > lo:
        lo, hi = lo - 0.5, hi + 0.5
    pad = 0.02 * (hi - lo)
    lo, hi = lo - pad, hi + pad
    edges = np.linspace(lo, hi, bins + 1)
    counts = np.histogram(scores, edges)[0]
    ref = np.histogram(reference, edges)[0] * (len(scores) / max(1, len(reference))) if reference is not None else None
    top = max(1.0, float(counts.max()), float(ref.max()) if ref is not None else 0.0)

    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=13)
    left, right, upper, lower = 60, width - 20, 40, height - 55

    def px(value):
        return left + (value - lo) / (hi - lo) * (right - left)

    def py(count):
        return lower - count / top * (lower - upper)

    for i, c in enumerate(counts):
        if c:
            draw.rectangle([px(edges[i]) + 1, py(c), px(edges[i + 1]) - 1, lower], fill=(70, 110, 180))
    if ref is not None:  # the normal images' scores (calibration), scaled to the same count
        points = []
        for i, c in enumerate(ref):
            points += [(px(edges[i]), py(c)), (px(edges[i + 1]), py(c))]
        draw.line(points, fill=(90, 90, 90), width=2)
    x_t = px(threshold)
    draw.line([(x_t, upper - 5), (x_t, lower)], fill=(200, 30, 30), width=2)
    flagged = int(np.sum(scores > threshold))
    draw.text((min(x_t + 4, right - 150), upper - 18), f"threshold {_label(threshold)}", fill=(200, 30, 30), font=font)
    draw.line([(left, lower), (right, lower)], fill="black")
    draw.line([(left, upper), (left, lower)], fill="black")
    for t in _ticks(lo, hi):
        draw.line([(px(t), lower), (px(t), lower + 4)], fill="black")
        draw.text((px(t), lower + 6), _label(t), fill="black", font=font, anchor="ma")
    for t in _ticks(0, top, 4):
        draw.line([(left - 4, py(t)), (left, py(t))], fill="black")
        draw.text((left - 6, py(t)), _label(t), fill="black", font=font, anchor="rm")
    draw.text(((left + right) / 2, height - 22), "score (higher = more anomalous)", fill="black", font=font, anchor="ma")
    legend = f"{title}: {len(scores)} images, {flagged} above the threshold"
    if ref is not None:
        legend += "; grey: the normal calibration images"
    draw.text((left, 8), legend, fill="black", font=font)
    path = Path(path)
    with atomic_path(path, mode=0o644) as tmp:
        image.save(tmp, format="PNG", optimize=True)
    return path
