"""The drawing tools of the report's figures (:mod:`keraszoo.experiments.figures`), and its pictures of saved models.

The rules every figure keeps: at least :data:`SIZE` inches at :data:`DPI` dots per inch (768 × 480 pixels or
more); means with their 95 % intervals and each seed's own value beside them (:func:`interval_panel`: lines along
a numeric swept argument, on a log axis when the argument spans a decade or more, and a log y axis when the
positive values do; points for categories, never joined; a setting without the axis' argument as a horizontal line
and band); at most :data:`MAX_LINES` lines per axes, each with its own colour and marker (:func:`chunks` splits the
rest into further panels); legends outside the axes; image grids with a label per row (:func:`image_rows`).
"""

from __future__ import annotations

import math
import pathlib

import numpy as np

from keraszoo.experiments.view import category_labels
from keraszoo.experiments.view import fmt
from keraszoo.experiments.view import group_by
from keraszoo.experiments.view import lines_of
from keraszoo.experiments.view import x_key

DPI = 120
#: the least size of a figure, in inches (768 × 480 pixels at DPI).
SIZE = (6.4, 4.0)
#: lines (settings, groups) per axes; more go to further panels.
MAX_LINES = 8
#: categories (points) per axes.
MAX_CATEGORIES = 14
COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
          "#17becf")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")


def pyplot():
    try:
        import matplotlib
    except ImportError:
        raise ImportError("keraszoo report draws its figures with matplotlib, which is not installed: "
                          "pip install 'keraszoo[plots]' (or matplotlib).") from None

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


#: margins, in inches: left (tick labels and the y label), top (a title), bottom (ticks and the x label), the gaps.
_LEFT, _TOP, _BOTTOM, _WSPACE, _HSPACE = 0.85, 0.4, 0.6, 0.75, 0.75
#: inches of a rotated (30°) tick label per character.
_ROTATED_CHAR = 0.031


def label_room(labels) -> float:
    """Inches below an axes for tick labels rotated by 30° (``labels``: the longest decides)."""
    longest = max((len(str(label)) for label in labels), default=0)
    return _ROTATED_CHAR * longest if longest > 6 else 0.0


def figure(nrows, ncols, panel=(3.4, 2.9), legend_labels=(), below=0.0):
    """A figure of ``nrows × ncols`` axes of ``panel`` inches each, at least :data:`SIZE`, with room on the right
    for a legend of ``legend_labels`` and ``below`` inches under each row for rotated tick labels. The margins are
    set by hand (no layout engine: it would measure every label of every figure again)."""
    plt = pyplot()
    legend_labels = [label for label in legend_labels if label != "all settings"]  # one unnamed line: no legend
    legend = min(3.6, 0.5 + 0.068 * max(len(str(label)) for label in legend_labels)) if legend_labels else 0.0
    hspace = _HSPACE + below
    left = _LEFT + 0.8 * below  # the first rotated label reaches left of its axes
    width = max(SIZE[0], left + ncols * panel[0] + (ncols - 1) * _WSPACE + legend + 0.25)
    height = max(SIZE[1], _TOP + nrows * panel[1] + (nrows - 1) * hspace + _BOTTOM + below)
    fig, axes = plt.subplots(nrows, ncols, figsize=(width, height), squeeze=False)
    right = width - legend - 0.25
    axis_w = (right - left - (ncols - 1) * _WSPACE) / ncols
    axis_h = (height - _TOP - _BOTTOM - below - (nrows - 1) * hspace) / nrows
    fig.subplots_adjust(left=left / width, right=right / width, top=1 - _TOP / height,
                        bottom=(_BOTTOM + below) / height, wspace=_WSPACE / axis_w, hspace=hspace / axis_h)
    fig.legend_anchor = ((right + 0.12) / width, 1 - _TOP / height)  # where Styles.legend puts the legend
    return fig, axes


def save(fig, path):
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    pyplot().close(fig)
    return path


class Styles:
    """One colour and marker per label, the same in every panel of a figure (so one legend serves them all)."""

    def __init__(self):
        self.by_label = {}
        self.handles = {}

    def __call__(self, label):
        if label not in self.by_label:
            i = len(self.by_label)
            self.by_label[label] = (COLORS[i % len(COLORS)], MARKERS[i % len(MARKERS)])
        return self.by_label[label]

    def keep(self, label, handle):
        self.handles.setdefault(label, handle)

    def legend(self, fig, title=None):
        """The figure's legend, right of its axes (in the room :func:`figure` left for it)."""
        if self.handles and list(self.handles) != ["all settings"]:  # one unnamed line needs no legend
            fig.legend(list(self.handles.values()), list(self.handles), loc="upper left",
                       bbox_to_anchor=getattr(fig, "legend_anchor", (0.8, 0.95)), fontsize=8, title=title,
                       title_fontsize=8, frameon=False, alignment="left")


# ----------------------------------------------------------------- settings on an axis
def chunks(ctx, settings):
    """``settings`` split so that each panel holds at most :data:`MAX_LINES` lines (or :data:`MAX_CATEGORIES` points)."""
    key = x_key(ctx, settings)
    if key is None:
        return [settings[i : i + MAX_CATEGORIES] for i in range(0, len(settings), MAX_CATEGORIES)] or [[]]
    lines, refs = lines_of(ctx, settings, key)
    room = max(1, MAX_LINES - len(refs[:3]))
    ref_settings = [s for _, s in refs[:3]]
    out = []
    for i in range(0, len(lines), room):
        out.append([s for _, ss in lines[i : i + room] for s in ss] + ref_settings)
    return out or [ref_settings]


def _scale_of(xs):
    """``"log"`` when the values are positive and span a decade or more, ``"symlog"`` with a zero, else ``"linear"``."""
    xs = sorted(set(xs))
    positive = [x for x in xs if x > 0]
    if len(positive) >= 2 and max(positive) / min(positive) >= 8:
        return "symlog" if len(positive) < len(xs) else "log"
    return "linear"


def log_y(ax):
    """A log y axis whose ticks read as plain numbers (2, 3, 4, 6, 10, 20, not 2×10⁰). The data drawn already sets
    how many are labelled: every tick up to a span of 30×, the 2s and 5s besides the powers of ten up to 1000× (one
    power of ten alone on the axis tells a reader little), over more only the powers of ten (the others would
    overlap)."""
    from matplotlib.ticker import FuncFormatter
    from matplotlib.ticker import NullFormatter

    ax.set_yscale("log")
    plain = FuncFormatter(lambda v, _: f"{v:g}")
    ax.yaxis.set_major_formatter(plain)
    low, high = ax.get_ylim()
    span = high / low if low > 0 else math.inf
    if span <= 30:
        minor = plain
    elif span <= 1000:
        minor = FuncFormatter(lambda v, _: f"{v:g}" if v > 0 and round(v / 10 ** math.floor(math.log10(v)), 6)
                              in (2.0, 5.0) else "")
    else:
        minor = NullFormatter()
    ax.yaxis.set_minor_formatter(minor)
    ax.tick_params(axis="y", which="minor", labelsize=7)


def _x_scale(ax, xs):
    """The axis of :func:`_scale_of`; ticks at the values, as written."""
    xs = sorted(set(xs))
    scale = _scale_of(xs)
    if scale == "symlog":
        ax.set_xscale("symlog", linthresh=min(x for x in xs if x > 0))
    elif scale == "log":
        ax.set_xscale("log")
    from matplotlib.ticker import NullFormatter
    from matplotlib.ticker import NullLocator

    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xticks(xs, [fmt(x) for x in xs])
    # the limits from the values alone, a margin each side in the scale's own space: a reference line (axhline,
    # axhspan) spans the axes, and on a symlog axis it had stretched the limits over negative values no setting has
    forward = ax.xaxis.get_transform()
    low, high = forward.transform([[xs[0]], [xs[-1]]])[:, 0]
    pad = 0.08 * (high - low) if high > low else 0.5
    ax.set_xlim(*forward.inverted().transform([[low - pad], [high + pad]])[:, 0])


def _dodge(xs_all, count):
    """``shift(x, i)``: line ``i`` of ``count`` moved a little sideways, so that error bars at one value stay apart."""
    scale = _scale_of(xs_all)
    if count < 2 or scale == "symlog" or len(set(xs_all)) < 2:
        return lambda x, i: x
    centre = (count - 1) / 2
    if scale == "log":
        step = 0.012 * (math.log10(max(xs_all)) - math.log10(min(xs_all)))
        return lambda x, i: x * 10 ** (step * (i - centre))
    step = 0.012 * (max(xs_all) - min(xs_all))
    return lambda x, i: x + step * (i - centre)


def seed_points(ax, x, setting, value_of, color):
    """Each seed's own value at ``x``, a small hollow point beside the mean and its interval: a seed that failed (a
    collapsed code) shows as an outlier rather than only as a wide interval."""
    values = [v for v in (value_of(r) for r in setting.runs) if isinstance(v, (int, float)) and math.isfinite(v)]
    if len(values) > 1:
        ax.scatter([x] * len(values), values, s=14, facecolors="none", edgecolors=color, linewidths=0.8, alpha=0.7,
                   zorder=3)
    return values


def interval_panel(ax, ctx, settings, value_of, styles, within=None):
    """``value_of(run)`` of each setting, mean ± 95 % interval: lines along the numeric swept argument, else points;
    each seed's own value a hollow point beside them (:func:`seed_points`).
    ``within``: the settings of the whole figure, when the panel draws some of them (one term's definition): its lines
    keep the figure's labels, colours and sideways offsets."""
    key = x_key(ctx, settings if within is None else within)
    if key is None:
        labels = category_labels(ctx, settings)
        ivs = [s.interval(value_of) for s in settings]
        shown = [(i, iv) for i, iv in enumerate(ivs) if iv.n]
        color, marker = styles("settings")
        ax.errorbar([i for i, _ in shown], [iv.mean for _, iv in shown],
                    yerr=[iv.half_width or 0.0 for _, iv in shown], linestyle="none", marker=marker, color=color,
                    capsize=4, markersize=6)
        for i, _ in shown:
            seed_points(ax, i, settings[i], value_of, color)
        ax.set_xticks(range(len(labels)), labels, rotation=30 if max(map(len, labels), default=0) > 6 else 0,
                      ha="right" if max(map(len, labels), default=0) > 6 else "center", fontsize=8)
        ax.set_xlim(-0.5, len(labels) - 0.5)
        return
    lines, refs = lines_of(ctx, settings, key, within)
    order = [label for label, _ in (lines if within is None else lines_of(ctx, within, key)[0])]
    xs_all = [float(s.params[key]) for _, line in lines for s in line]
    shift = _dodge(xs_all, len(order))
    ys_all = []
    for label, line in lines:
        i = order.index(label)
        points = [(float(s.params[key]), s.interval(value_of), s) for s in line]
        points = [(x, iv, s) for x, iv, s in points if iv.n]
        if not points:
            continue
        ys_all += [iv.low if iv.has_width else iv.mean for _, iv, _ in points] + [iv.mean for _, iv, _ in points]
        color, marker = styles(label)
        for x, _, s in points:
            ys_all += seed_points(ax, shift(x, i), s, value_of, color)
        handle = ax.errorbar([shift(x, i) for x, _, _ in points], [iv.mean for _, iv, _ in points],
                             yerr=[iv.half_width or 0.0 for _, iv, _ in points], color=color, marker=marker, capsize=3,
                             linestyle="-" if len(points) > 1 else "none", markersize=5)
        styles.keep(label, handle)
    for label, s in refs[:3]:
        iv = s.interval(value_of)
        if not iv.n:
            continue
        color, _ = styles(f"{label} (no {key})")
        handle = ax.axhline(iv.mean, color=color, linestyle=":", linewidth=1.6)
        ys_all.append(iv.mean)
        if iv.has_width:
            ax.axhspan(iv.low, iv.high, color=color, alpha=0.15, linewidth=0)
        styles.keep(f"{label} (no {key})", handle)
    if xs_all:
        _x_scale(ax, xs_all)
    if ys_all and min(ys_all) > 0 and max(ys_all) / min(ys_all) >= 10:  # values over a decade or more
        log_y(ax)
    ax.set_xlabel(key, fontsize=9)


def grid_of(count, per_row=3):
    cols = min(per_row, max(1, count))
    return -(-count // cols), cols


def hide_unused(axes, used):
    for ax in axes.flat[used:]:
        ax.set_visible(False)


# ----------------------------------------------------------------- pictures of saved models
def _first_runs(ctx, want=None):
    """``(setting, its first seed's run)`` of each setting with a saved model (and ``want(model)``); a seed carried
    here without its folder (:mod:`keraszoo.experiments.carry`) gives way to the next seed whose folder is here."""
    out = []
    saved = getattr(ctx, "saved", None)
    for s in ctx.settings():
        here = [r for r in s.runs if saved is None or not saved.carried_without_folder(r)]
        if not here or here[0].get("model_dir") is None:
            continue
        r = here[0]
        if want is not None and not want(ctx.model(r)):
            continue
        out.append((s, r))
    return out


def image_rows(rows, labels, path, title=None):
    """A grid of images, one row per entry of ``rows`` (``(k, H, W, C)`` arrays), each named by its label on the left.

    Drawn as one image (the rows side by side, a 2-pixel white gap), the labels as its y ticks: one axes, however
    many images."""
    plt = pyplot()
    ncols, nrows = max(len(r) for r in rows), len(rows)
    first = np.asarray(rows[0][0])
    h, w = first.shape[:2]
    channels = 3 if first.ndim == 3 and first.shape[-1] == 3 else 1
    gap = 2
    mosaic = np.ones((nrows * (h + gap) - gap, ncols * (w + gap) - gap, channels), "float32")
    for i, row in enumerate(rows):
        for j, image in enumerate(row):
            image = np.clip(np.asarray(image, "float32"), 0, 1).reshape(h, w, -1)
            mosaic[i * (h + gap) : i * (h + gap) + h, j * (w + gap) : j * (w + gap) + w] = image[..., :channels]
    cell = 0.62
    label_w = min(3.4, 0.35 + 0.07 * max(len(str(label)) for label in labels))
    width = max(SIZE[0], label_w + ncols * cell + 0.3)
    height = max(SIZE[1], nrows * cell + (0.6 if title else 0.3))
    fig = plt.figure(figsize=(width, height))
    grid_w, grid_h = ncols * cell / width, nrows * cell / height
    top = min(1 - (0.45 if title else 0.15) / height, 0.5 + grid_h / 2)  # the grid centred on the page
    ax = fig.add_axes((label_w / width, top - grid_h, grid_w, grid_h))
    ax.imshow(mosaic[..., 0] if channels == 1 else mosaic, cmap="gray", vmin=0, vmax=1, interpolation="nearest",
              aspect="auto")
    ax.set_xticks([])
    ax.set_yticks([i * (h + gap) + h / 2 for i in range(nrows)], [str(label) for label in labels], fontsize=8)
    ax.tick_params(axis="y", length=0, pad=6)
    for spine in ax.spines.values():
        spine.set_visible(False)
    if title:
        fig.suptitle(title, fontsize=9, y=1 - 0.12 / height, va="top")
    return save(fig, path)


def reconstruction_grid(ctx, path, count=8):
    """The first ``count`` test images (top row) and, below, each setting's reconstructions (its first seed)."""
    x, y = ctx.images(count)
    if x is None:
        return None
    return _with_reconstructions(ctx, path, x, y, [x], ["test images"])


def denoising_grid(ctx, path, count=4):
    """Each test noise the runs were probed with, at its strongest level: the first ``count`` test images clean, then
    corrupted (one fixed draw), then each setting's reconstruction of the corrupted ones (its first seed). The
    noises sit side by side, ``count`` images each, in the order the title names them."""
    from keraszoo.experiments.probes import corrupt
    from keraszoo.experiments.probes import strongest_test_noise

    noises = sorted(strongest_test_noise(ctx.runs).items())
    x, y = ctx.images(count)
    if x is None or not noises:
        return None
    noisy = np.concatenate([corrupt(x, noise, level, np.random.default_rng([0, i])) for i, (noise, level)
                            in enumerate(noises)])
    title = "left to right, " + " | ".join(f"{noise} {fmt(level)}" for noise, level in noises) + f" ({count} images each)"
    return _with_reconstructions(ctx, path, noisy, None if y is None else np.concatenate([y] * len(noises)),
                                 [np.concatenate([x] * len(noises)), noisy], ["clean test images", "corrupted (the input)"],
                                 title)


def _with_reconstructions(ctx, path, inputs, labels_of, rows, labels, title=None):
    """``rows`` (named by ``labels``) and below them each setting's reconstruction of ``inputs`` (its first seed);
    ``None`` when no setting has a saved model."""
    rows, labels, given = list(rows), list(labels), len(rows)
    for s, r in _first_runs(ctx):
        model = ctx.model(r)
        rows.append(np.asarray(model.reconstruct(inputs, **model.label_kwargs(labels_of))))
        labels.append(s.label)
    return image_rows(rows, labels, path, title=title) if len(rows) > given else None


def samples_grid(ctx, path, count=8):
    """Samples from the prior (seed 0) of every generative setting (its first seed's model), one row each."""
    rows, labels = [], []
    for s, r in _first_runs(ctx, lambda m: m.is_generative):
        model = ctx.model(r)
        kw = model.label_kwargs(model.cycled_labels(count))  # a conditional model: every class in turn
        try:
            rows.append(np.asarray(model.sample(count, seed=0, **kw)))
        except (NotImplementedError, ValueError):  # a VQ-VAE before its prior is trained
            continue
        labels.append(s.label)
    if not rows:
        return None
    return image_rows(rows, labels, path)


def interpolation_grid(ctx, path, steps=8):
    """For every generative setting, the decoded line between the codes of the first two test images."""
    x, y = ctx.images(2)
    if x is None:
        return None
    rows, labels = [], []
    for s, r in _first_runs(ctx, lambda m: m.is_generative):
        model = ctx.model(r)
        kw = {"labels": int(y[0]), "end_labels": int(y[1])} if model.requires_labels else {}
        rows.append(np.asarray(model.interpolate(x[0], x[1], steps=steps, **kw)))
        labels.append(s.label)
    if not rows:
        return None
    return image_rows(rows, labels, path)


def latent_scatter(ctx, path, count=500):
    """Test codes of every setting with a 2-dimensional code (its first seed's model), coloured by class."""
    chosen = [(s, r) for s, r in _first_runs(ctx) if int(r["params"].get("latent_dim") or 0) == 2]
    x, y = ctx.images(count)
    if not chosen or x is None:
        return None
    plt = pyplot()
    rows, cols = grid_of(len(chosen), 3)
    fig, axes = figure(rows, cols, panel=(2.7, 2.5), legend_labels=("class 0",))
    points = None
    for ax, (s, r) in zip(axes.flat, chosen):
        model = ctx.model(r)
        codes = np.asarray(model.encode(x, **model.label_kwargs(y)))
        if codes.ndim != 2 or codes.shape[1] != 2:
            ax.set_visible(False)
            continue
        points = ax.scatter(codes[:, 0], codes[:, 1], c=y, cmap="tab10", s=5, vmin=-0.5, vmax=9.5)
        ax.set_title(s.label, fontsize=8)
        ax.tick_params(labelsize=7)
    hide_unused(axes, len(chosen))
    if points is None:
        plt.close(fig)
        return None
    x0, top = fig.legend_anchor
    fig.colorbar(points, cax=fig.add_axes((x0, 0.15, 0.025, top - 0.15)), ticks=range(10), label="class")
    return save(fig, path)


# ----------------------------------------------------------------- the consistency check
def consistency_figure(checks, path):
    """(a) every logged epoch's total_loss against ``reconstruction_loss + Σ w·term``; (b) every test term the run
    reports against its NumPy recomputation; both on symmetric-log axes with the line y = x."""
    history = [(p.logged, p.recomputed, "validation" if p.prefix else "train") for c in checks
               for p in c.history_points]
    tests = [(t.reported, t.recomputed, t.name) for c in checks for t in c.terms]
    panels = [(f"(a) training log: logged total_loss vs reconstruction + Σ w·term ({len(history)} epochs)",
               history, "logged total_loss", "recomputed from the logged terms")] if history else []
    if tests:
        panels.append((f"(b) test terms: reported vs NumPy ({len(tests)} terms)", tests, "reported by the run",
                       "recomputed by NumPy"))
    if not panels:
        return None
    styles = Styles()
    fig, axes = figure(1, len(panels), panel=(3.9, 3.9), legend_labels=sorted({k for _, _, k in history + tests}))
    for ax, (title, points, xlabel, ylabel) in zip(axes[0], panels):
        by_kind = group_by(points, lambda p: p[2])
        for kind, group in by_kind.items():
            color, marker = styles(kind)
            handle = ax.scatter([p[0] for p in group], [p[1] for p in group], s=14, color=color, marker=marker,
                                alpha=0.8)
            styles.keep(kind, handle)
        values = [v for p in points for v in p[:2] if math.isfinite(v)]
        lo, hi = min(values), max(values)
        ax.plot([lo, hi], [lo, hi], color="black", linewidth=0.8, linestyle="--", label="y = x")
        positive = [abs(v) for v in values if v != 0]
        thresh = max(min(positive), 1e-6) if positive else 1.0
        if positive and max(positive) / thresh >= 100:
            ax.set_xscale("symlog", linthresh=thresh)
            ax.set_yscale("symlog", linthresh=thresh)
        ax.set_title(title, fontsize=8)
        ax.set_xlabel(xlabel, fontsize=8)
        ax.set_ylabel(ylabel, fontsize=8)
        ax.tick_params(labelsize=7)
    styles.legend(fig, title="(a): split; (b): term" if tests and history else "term" if tests else "split")
    return save(fig, path)
