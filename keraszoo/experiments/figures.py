"""The report's figures: matplotlib plots (Agg backend) drawn for reading, every one from the results.

Each function takes the runs of one study (a :class:`~keraszoo.experiments.view.StudyRuns`) and writes one PNG,
returning its path (``None`` when the study has nothing to draw); the drawing tools and the pictures of saved
models are in :mod:`keraszoo.experiments.plotting`. The rules they keep:

* at least :data:`SIZE` inches at :data:`DPI` dots per inch (768 × 480 pixels or more);
* every number is a setting's mean over its seeds with its 95 % interval (error bars; bands for the per-epoch
  curves): :mod:`keraszoo.experiments.stats`;
* settings along a numeric swept argument are joined by lines (log axis when the values span a decade or more);
  categories (depth's layer lists, the variants, model=ae beside model=cae) are points, never joined; a setting
  without the axis' argument (the plain autoencoder beside the contractive weights) is a horizontal line and band;
* at most :data:`MAX_LINES` lines per axes, each with its own colour and marker (more: more panels); legends
  outside the axes, ticks named by the settings' values;
* loss values in the units of one likelihood per figure or panel (the report draws the ``per_likelihood``
  figures once per likelihood);
* image grids name each row's setting.

:data:`GENERIC_FIGURES` run for every study, :data:`STUDY_FIGURES` by study name; a :class:`Figure` that
``needs_models`` is left out of a report rebuilt from ``results.jsonl`` alone.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from keraszoo.experiments import plotting
from keraszoo.experiments import stats
from keraszoo.experiments.plotting import DPI  # noqa: F401 - the figures' resolution, named here too
from keraszoo.experiments.plotting import MAX_CATEGORIES
from keraszoo.experiments.plotting import MAX_LINES
from keraszoo.experiments.plotting import SIZE  # noqa: F401 - the figures' least size, named here too
from keraszoo.experiments.plotting import Styles
from keraszoo.experiments.plotting import chunks
from keraszoo.experiments.plotting import consistency_figure  # noqa: F401 - the report's figure of the check
from keraszoo.experiments.plotting import denoising_grid
from keraszoo.experiments.plotting import figure
from keraszoo.experiments.plotting import grid_of
from keraszoo.experiments.plotting import hide_unused
from keraszoo.experiments.plotting import interpolation_grid
from keraszoo.experiments.plotting import label_room
from keraszoo.experiments.plotting import latent_scatter
from keraszoo.experiments.plotting import reconstruction_grid
from keraszoo.experiments.plotting import samples_grid
from keraszoo.experiments.plotting import save as _save
from keraszoo.experiments.probes import DENOISED_KEY
from keraszoo.experiments.view import category_labels
from keraszoo.experiments.view import fmt
from keraszoo.experiments.view import is_number
from keraszoo.experiments.view import lines_of
from keraszoo.experiments.view import x_key


# ----------------------------------------------------------------- numbers against the setting
def reconstruction(ctx, path):
    """Test reconstruction_loss of every setting, one panel per likelihood (their units differ), mean ± 95 %. Not for
    a one-class study: its test split holds the anomalies, and its settings differ in their normal class."""
    if ctx.one_class:
        return None
    panels = [(likelihood, part) for likelihood, settings in ctx.panels().items() for part in chunks(ctx, settings)]
    panels = [(lk, ss) for lk, ss in panels if any(s.values(lambda r: ctx.test_value(r, "reconstruction_loss"))
                                                   for s in ss)]
    if not panels:
        return None
    styles = Styles()
    rows, cols = grid_of(len(panels), 2)
    fig, axes = figure(rows, cols, panel=(4.2, 3.4), legend_labels=_legend_guess(ctx),
                       below=_below(ctx, [ss for _, ss in panels]))
    for ax, (likelihood, settings) in zip(axes.flat, panels):
        plotting.interval_panel(ax, ctx, settings, lambda r: ctx.test_value(r, "reconstruction_loss"), styles)
        ax.set_title(likelihood, fontsize=9)
        ax.set_ylabel("test reconstruction_loss", fontsize=9)
        ax.tick_params(labelsize=8)
    hide_unused(axes, len(panels))
    styles.legend(fig)
    return _save(fig, path)


def _below(ctx, parts):
    """Inches under a row of panels for the rotated category labels of ``parts`` (settings per panel)."""
    return max((label_room(category_labels(ctx, part)) for part in parts if x_key(ctx, part) is None), default=0.0)


def _legend_guess(ctx):
    """The labels a legend of the study's lines may hold (to leave room for it)."""
    settings = ctx.settings()
    key = x_key(ctx, settings)
    if key is None:
        return ()
    lines, refs = lines_of(ctx, settings, key)
    return [label for label, _ in lines] + [f"{label} (no {key})" for label, _ in refs]


def terms_vs_setting(ctx, path, terms=None):
    """Each test term (default: L_total and its terms) of every setting, mean ± 95 % interval over seeds (not for a
    one-class study, as :func:`reconstruction`)."""
    if ctx.one_class:
        return None
    if terms is None:  # L_total and its terms (an L_total that is the reconstruction term alone: once)
        same = all(ctx.test_value(r, "total_loss") == ctx.test_value(r, "reconstruction_loss") for r in ctx.runs)
        terms = [t for t in ctx.terms if not (same and t == "total_loss")]
        if terms == ["reconstruction_loss"]:  # no regularization term: the reconstruction figure already shows it
            return None
    else:
        terms = [t for t in terms if any(t in r.get("test", {}) for r in ctx.runs)]
    if not terms:
        return None
    parts = chunks(ctx, ctx.settings())
    # a term whose definition an argument chooses (a KL or an L1 sparsity penalty): one panel per definition
    def logging(settings, term):  # a term some variants log only (the VQ-VAE's codebook_loss): their settings alone
        return [s for s in settings if any(math.isfinite(ctx.test_value(r, term)) for r in s.runs)]

    panels = [(term, definition, shown, part) for part in parts for term in terms
              for definition, settings in ctx.definition_groups(part, term).items()
              if (shown := logging(settings, term))]
    styles = Styles()
    rows, cols = grid_of(len(panels), 3)
    fig, axes = figure(rows, cols, panel=(3.3, 2.9), legend_labels=_legend_guess(ctx), below=_below(ctx, parts))
    for ax, (term, definition, settings, part) in zip(axes.flat, panels):
        plotting.interval_panel(ax, ctx, settings, lambda r, term=term: ctx.test_value(r, term), styles, within=part)
        ax.set_title(_term_title(term, definition), fontsize=9)
        ax.tick_params(labelsize=8)
    hide_unused(axes, len(panels))
    styles.legend(fig)
    return _save(fig, path)


def _term_title(term, definition):
    """``test <term>``, with what it measures where an argument chooses that (``definition``: term definitions)."""
    if not definition:
        return f"test {term}"
    if term == "total_loss":
        return "test total_loss, with the " + "; ".join(d.meaning for d in definition)
    return f"test {term}: {definition[0].meaning}"


def training_time(ctx, path):
    """Seconds per epoch of every run (points) and each setting's median (bar); a log axis where they span a decade.
    Timings on a loaded machine are noisy and skewed: no t-interval."""
    settings = [s for s in ctx.settings() if s.values(lambda r: ctx.run_value(r, "seconds_per_epoch"))]
    if not settings:
        return None
    parts = [settings[i : i + MAX_CATEGORIES] for i in range(0, len(settings), MAX_CATEGORIES)]
    fig, axes = figure(len(parts), 1, panel=(max(5.5, 0.45 * len(parts[0])), 3.4),
                       below=max(label_room(category_labels(ctx, part)) for part in parts))
    styles = Styles()
    for ax, part in zip(axes.flat, parts):
        labels = category_labels(ctx, part)
        color, marker = styles("settings")
        seen = []
        for i, s in enumerate(part):  # every seed's time (a loaded machine's times are not normal: no t-interval)
            values = list(s.values(lambda r: ctx.run_value(r, "seconds_per_epoch")).values())
            seen += values
            ax.plot([i] * len(values), values, linestyle="none", marker="o", markersize=4, color=color, alpha=0.5)
            ax.plot([i - 0.2, i + 0.2], [float(np.median(values))] * 2, color=color, linewidth=2)
        ax.set_xticks(range(len(part)), labels, rotation=30, ha="right", fontsize=8)
        ax.set_ylabel("seconds per epoch", fontsize=9)
        if seen and min(seen) > 0 and max(seen) / min(seen) >= 10:
            plotting.log_y(ax)
        else:
            ax.set_ylim(bottom=0)
    axes[0][0].set_title("training time (a shared, loaded machine: noisy, not a ranking)", fontsize=9)
    return _save(fig, path)


# ----------------------------------------------------------------- per-epoch curves
def _epoch_band(settings_runs, values_of):
    """``(epochs, mean, low, high)`` over the seeds that reached each epoch (early stopping ends runs apart)."""
    series = [[v for v in values_of(r.get("history", {}))] for r in settings_runs]
    length = max((len(s) for s in series), default=0)
    epochs, mean, low, high = [], [], [], []
    for e in range(length):
        at = [s[e] for s in series if e < len(s) and is_number(s[e]) and math.isfinite(s[e])]
        if at:
            epochs.append(e + 1)
            mean.append(float(np.mean(at)))
            low.append(min(at))
            high.append(max(at))
    return epochs, mean, low, high


def _ordered(ctx, settings):
    """``settings`` by line (the other arguments) and then along the numeric swept argument: a row of panels holds
    whole families."""
    key = x_key(ctx, settings)
    if key is None:
        return settings
    lines, refs = lines_of(ctx, settings, key)
    return [s for _, line in lines for s in line] + [s for _, s in refs]


def _per_epoch_curves(ctx, path, columns, axis_from=0):
    """One line per setting (the mean over its seeds; band: their range) of each ``(title, values_of)`` column,
    against the epoch; at most :data:`MAX_LINES` settings per row of panels, each row with its own legend. The y
    axis spans the values from epoch ``axis_from + 1`` on when ``axis_from`` is set."""
    settings = [s for s in _ordered(ctx, ctx.settings())
                if any(any(is_number(v) for v in fn(r.get("history", {}))) for r in s.runs for _, fn in columns)]
    columns = [(title, fn) for title, fn in columns
               if any(any(is_number(v) for v in fn(r.get("history", {}))) for r in ctx.runs)]
    if not columns or not settings:
        return None
    parts = [settings[i : i + MAX_LINES] for i in range(0, len(settings), MAX_LINES)]
    legend_title = "setting (mean; band: seeds' range)"
    fig, axes = figure(len(parts), len(columns), panel=(3.6, 3.0),
                       legend_labels=[s.label for s in settings] + [legend_title])
    for row, part in enumerate(parts):
        styles = Styles()
        for col, (title, values_of) in enumerate(columns):
            ax = axes[row][col]
            shown = []
            for s in part:
                epochs, mean, low, high = _epoch_band(s.runs, values_of)
                if not epochs:
                    continue
                color, marker = styles(s.label)
                (handle,) = ax.plot(epochs, mean, color=color, marker=marker, markersize=4,
                                    markevery=max(1, len(epochs) // 8))
                if len(s.runs) > 1:
                    ax.fill_between(epochs, low, high, color=color, alpha=0.15, linewidth=0)
                styles.keep(s.label, handle)
                shown += [v for e, a, b in zip(epochs, low, high) if e > axis_from for v in (a, b)]
            if axis_from and shown:
                lo, hi = min(shown), max(shown)
                ax.set_ylim(lo - 0.05 * (hi - lo + 1e-9), hi + 0.05 * (hi - lo + 1e-9))
            elif shown and min(shown) > 0 and max(shown) / min(shown) >= 10:
                plotting.log_y(ax)
            ax.set_title(title, fontsize=9)
            ax.set_xlabel("epoch", fontsize=9)
            ax.tick_params(labelsize=8)
            ax.xaxis.get_major_locator().set_params(integer=True)
        if styles.handles:
            axes[row][-1].legend(list(styles.handles.values()), list(styles.handles), loc="upper left",
                                 bbox_to_anchor=(1.02, 1.0), fontsize=8, frameon=False,
                                 title=legend_title if row == 0 else None, title_fontsize=8)
    return _save(fig, path)


def training_curves(ctx, path):
    """Training and validation L_total per epoch of every setting. The y axis spans the values after the first
    tenth of the epochs (at least the first two): the first epochs' losses, several times the converged ones, would
    flatten the late epochs a reader looks at for convergence."""
    longest = max((len(r.get("history", {}).get("total_loss", [])) for r in ctx.runs), default=0)
    return _per_epoch_curves(ctx, path, [("train total_loss", lambda h: h.get("total_loss", [])),
                                         ("validation total_loss", lambda h: h.get("val_total_loss", []))],
                             axis_from=max(2, longest // 10))


def elbo_curves(ctx, path):
    """The training negative ELBO per epoch, ``reconstruction_loss + kl_loss`` unweighted.

    ``total_loss`` weights the KL by the warm-up's ``kl_weight``, so during a warm-up it is not the
    bound, and a run with a warm-up cannot be compared with one without on it; this sum can. The axis
    spans the values from the third epoch on: a warm-up's first ones (a KL of hundreds of nats) would
    squash every curve flat.
    """
    def negative_elbo(history):
        return [a + b if is_number(a) and is_number(b) else None
                for a, b in zip(history.get("reconstruction_loss", []), history.get("kl_loss", []))]

    return _per_epoch_curves(ctx, path, [("-ELBO, train (nats)", negative_elbo)], axis_from=2)


# ----------------------------------------------------------------- trade-offs
def _scatter_pairs(ctx, path, x_term, y_term, title):
    """Each setting's test ``y_term`` against its ``x_term`` (means ± 95 % both ways); a line joins the settings of
    one group along the swept numeric argument, each point named by its value."""
    settings = [s for s in ctx.settings() if s.values(lambda r: ctx.test_value(r, x_term))
                and s.values(lambda r: ctx.test_value(r, y_term))]
    if not settings:
        return None
    key = x_key(ctx, settings)
    if key is not None:
        lines, refs = lines_of(ctx, settings, key)
        groups = lines + [(label, [s]) for label, s in refs]
    else:
        groups = [(label, [s]) for label, s in zip(category_labels(ctx, settings), settings)]
    styles = Styles()
    fig, axes = figure(1, 1, panel=(5.0, 3.8), legend_labels=[g for g, _ in groups])
    ax = axes[0][0]
    x_means = []
    for label, group in groups[: MAX_LINES * 2]:
        xs = [s.interval(lambda r: ctx.test_value(r, x_term)) for s in group]
        x_means += [iv.mean for iv in xs]
        ys = [s.interval(lambda r: ctx.test_value(r, y_term)) for s in group]
        color, marker = styles(label)
        handle = ax.errorbar([iv.mean for iv in xs], [iv.mean for iv in ys], xerr=[iv.half_width or 0 for iv in xs],
                             yerr=[iv.half_width or 0 for iv in ys], color=color, marker=marker, capsize=3,
                             linestyle="-" if len(group) > 1 else "none")
        styles.keep(label, handle)
        if key is not None:
            for s, x, y in zip(group, xs, ys):
                if s.params.get(key) is not None:
                    ax.annotate(fmt(s.params[key]), (x.mean, y.mean), fontsize=7, xytext=(4, 4),
                                textcoords="offset points")
    if min(x_means) > 0 and max(x_means) / min(x_means) >= 10:  # measured values over a decade or more
        from matplotlib.ticker import FuncFormatter

        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.set_xlabel(f"test {x_term}" + (" (log scale)" if ax.get_xscale() == "log" else ""), fontsize=9)
    ax.set_ylabel(f"test {y_term}", fontsize=9)
    ax.set_title(title + (f"; points labelled by {key}" if key is not None else ""), fontsize=9)
    ax.tick_params(labelsize=8)
    styles.legend(fig)
    return _save(fig, path)


def rate_distortion(ctx, path):
    """beta: the rate (KL) against the distortion (reconstruction), test split."""
    return _scatter_pairs(ctx, path, "kl_loss", "reconstruction_loss", "rate-distortion (test)")


def _first_present(ctx, names):
    return next((n for n in names if any(n in r.get("test", {}) for r in ctx.runs)), names[-1])


def sparsity_tradeoff(ctx, path):
    x_term = _first_present(ctx, ("mean_activation", "mean_code_activation"))
    return _scatter_pairs(ctx, path, x_term, "reconstruction_loss", "reconstruction vs mean activation (test)")


def contractive_tradeoff(ctx, path):
    x_term = _first_present(ctx, ("jacobian_frobenius", "mean_jacobian_frobenius", "contractive_loss"))
    return _scatter_pairs(ctx, path, x_term, "reconstruction_loss", "reconstruction vs ‖J_f‖ (test)")


def code_quality(ctx, path):
    """latent: k-NN and linear-probe accuracy and active units of the test codes against the setting."""
    return terms_vs_setting(ctx, path, terms=("knn_accuracy", "linear_probe_accuracy", "active_units"))


def denoising(ctx, path):
    """noise: PSNR of denoised test images against the test-time noise level, per noise type, one line per setting."""
    found = {}
    for r in ctx.runs:
        for key in r.get("test", {}):
            m = DENOISED_KEY.match(key)
            if m:
                found.setdefault(m["noise"], set()).add(float(m["level"]))
    if not found:
        return None
    settings = ctx.settings()
    parts = [settings[i : i + MAX_LINES - 1] for i in range(0, len(settings), MAX_LINES - 1)]
    styles = Styles()
    fig, axes = figure(len(parts), len(found), panel=(3.4, 3.0), legend_labels=[s.label for s in settings])
    for row, part in enumerate(parts):
        for ax, (noise, levels) in zip(axes[row], sorted(found.items())):
            levels = sorted(levels)
            for s in part:
                ivs = [s.interval(lambda r, k=f"denoised_psnr_{noise}_{v:g}_db": ctx.test_value(r, k)) for v in levels]
                points = [(v, iv) for v, iv in zip(levels, ivs) if iv.n]
                if not points:
                    continue
                color, marker = styles(s.label)
                handle = ax.errorbar([v for v, _ in points], [iv.mean for _, iv in points],
                                     yerr=[iv.half_width or 0 for _, iv in points], color=color, marker=marker,
                                     capsize=3)
                styles.keep(s.label, handle)
            noisy = [stats.interval([ctx.test_value(r, f"noisy_psnr_{noise}_{v:g}_db") for r in ctx.runs]).mean
                     for v in levels]
            (handle,) = ax.plot(levels, noisy, "k:", label="noisy input")
            styles.keep("noisy input", handle)
            ax.set_title(f"test noise: {noise}", fontsize=9)
            ax.set_xlabel("test-time level", fontsize=9)
            ax.set_ylabel("PSNR (dB)", fontsize=9)
            ax.tick_params(labelsize=8)
    styles.legend(fig)
    return _save(fig, path)


# ----------------------------------------------------------------- the report's list
@dataclasses.dataclass(frozen=True)
class Figure:
    """A figure of a study: its file stem, caption and function; ``per_likelihood``: drawn once per likelihood (it
    plots loss values); ``needs_models``: it draws from the saved models (left out when they are not here)."""

    stem: str
    caption: str
    fn: object
    per_likelihood: bool = False
    needs_models: bool = False

    def __iter__(self):  # (stem, caption, fn), as the tuples of earlier versions
        return iter((self.stem, self.caption, self.fn))


#: drawn for every study.
GENERIC_FIGURES = (
    Figure("reconstruction", "test reconstruction_loss of every setting, mean ± 95 % interval over seeds (hollow "
                             "points: each seed), one panel "
                             "per likelihood (their units differ)", reconstruction),
    Figure("terms", "L_total and each of its terms on the test split, mean ± 95 % interval over seeds (hollow "
                    "points: each seed)",
           terms_vs_setting, per_likelihood=True),
    Figure("curves", "training (left) and validation (right) L_total per epoch: each setting's mean over its seeds, "
                     "band: their range; the y axis spans the epochs after the first tenth", training_curves, per_likelihood=True),
    Figure("reconstructions", "first test images (top row) and each setting's reconstructions (its first seed)",
           reconstruction_grid, needs_models=True),
    Figure("samples", "samples from the prior (seed 0) of the generative settings (their first seed), one row each",
           samples_grid, needs_models=True),
    Figure("interpolations", "decoded latent line between two test images, generative settings (first seed)",
           interpolation_grid, needs_models=True),
    Figure("latent", "test codes of the settings with latent size 2 (first seed), coloured by class", latent_scatter,
           needs_models=True),
    Figure("time", "seconds per training epoch: every run (points) and each setting's median (bar); a loaded machine: noisy",
           training_time),
)

#: study name -> extra figures; a user's study gets the generic ones only.
STUDY_FIGURES = {
    "beta": (Figure("rate_distortion", "rate (KL) against distortion (reconstruction), test split, mean ± 95 % both "
                                       "ways", rate_distortion, per_likelihood=True),),
    "sparsity": (Figure("sparsity", "reconstruction against mean code activation, test split, mean ± 95 %",
                        sparsity_tradeoff, per_likelihood=True),),
    "contractive": (Figure("contractive", "reconstruction against the encoder's Jacobian norm, test split, mean ± 95 %",
                           contractive_tradeoff, per_likelihood=True),),
    "latent": (Figure("codes", "k-NN / linear-probe accuracy and active units of the test codes, mean ± 95 % over seeds",
                      code_quality),),
    "ladder": (Figure("elbo", "training negative ELBO per epoch (reconstruction + unweighted KL: the bound, warm-up or "
                              "not; the axis spans the values from the third epoch on)", elbo_curves,
                      per_likelihood=True),),
    "noise": (Figure("denoising", "PSNR of denoised test images against the test-time noise level, mean ± 95 % "
                                  "(dotted: the noisy input)", denoising),
              Figure("denoised", "the first test images under each test noise at its strongest level (one fixed "
                                 "draw), and each setting's reconstruction of them (its first seed)", denoising_grid,
                     needs_models=True)),
}


def _roc(ctx, path):
    from keraszoo.anomaly import report as anomaly_report

    return anomaly_report.roc_figure(ctx.runs, path)


def _top_anomalies(ctx, path):
    from keraszoo.anomaly import report as anomaly_report

    data_dir = ctx.saved.data_dir if ctx.saved is not None else None
    return anomaly_report.top_anomalies_figure(ctx.runs, path, data_dir=data_dir)


#: the one-class benchmark's figures (keraszoo.anomaly.report), for both datasets' studies.
_ANOMALY_FIGURES = (
    Figure("roc", "ROC curves per normal class, mean over seeds, on a log false-positive axis (each model's best score "
                  "and the baselines)", _roc),
    Figure("top_anomalies", "each normal class's own test images that the best model's default score ranks most "
                            "anomalous (its first seed): the class's outliers, 8 per row, one row per normal class "
                            "in order from the top",
           _top_anomalies, needs_models=True),
)
STUDY_FIGURES.update(anomaly=_ANOMALY_FIGURES, anomaly_cifar10=_ANOMALY_FIGURES)
