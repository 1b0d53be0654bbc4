"""The report's figures: matplotlib plots (Agg backend, small PNGs) and image grids, every one drawn from results.

Each function takes the runs of one study (results lines, see :mod:`keraszoo.experiments.report`) and
writes one PNG, returning its path (``None`` when the study has nothing to draw). Study-specific figures
are listed in :data:`STUDY_FIGURES`, keyed by study name; :data:`GENERIC_FIGURES` run for every study.
"""

from __future__ import annotations

import pathlib
import re

import numpy as np

DPI = 80
SIZE = (5.0, 3.2)


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise ImportError("keraszoo report draws its figures with matplotlib, which is not installed: "
                          "pip install 'keraszoo[plots]' (or matplotlib).") from None

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path):
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    _pyplot().close(fig)
    return path


def _axis(ctx):
    """``(values, label, numeric)`` of the study's x axis: the swept setting (the first one), else the run ids."""
    runs, swept = ctx.runs, ctx.swept
    if swept:
        key = swept[0]
        values = [r["params"].get(key) for r in runs]
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
        return values, key, numeric
    return [r["run_id"] for r in runs], "run", False


def _tick(value):
    return "(unset)" if value is None else ",".join(map(str, value)) if isinstance(value, list) else str(value)


def _labels(ctx):
    return [ctx.label(r) for r in ctx.runs]


def terms_vs_setting(ctx, path, terms=None, train=True):
    """L_total and each of its terms, last training epoch (solid) and test (dashed), against the swept setting."""
    terms = ctx.terms if terms is None else [t for t in terms if any(t in r.get("test", {}) for r in ctx.runs)]
    if not terms:
        return None
    plt = _pyplot()
    cols = min(4, len(terms))
    rows = -(-len(terms) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols + 0.6, 2.6 * rows + 0.2), squeeze=False)
    for ax in axes.flat[len(terms):]:
        ax.set_visible(False)
    groups = ctx.groups()
    for ax, term in zip(axes.flat, terms):
        for group, runs in groups.items():
            xs, label, numeric = _axis(ctx.subset(runs))
            test = [ctx.test_value(r, term) for r in runs]
            pos = xs if numeric else range(len(xs))
            if train:
                ax.plot(pos, [ctx.train_value(r, term) for r in runs], "o-", label=f"{group} train" if group else "train")
            ax.plot(pos, test, "s--", label=f"{group} test" if group else "test")
            if numeric and len(set(xs)) > 1 and min(xs) > 0 and max(xs) / min(xs) >= 8:
                ax.set_xscale("log", base=2)
            if not numeric:
                ax.set_xticks(list(pos), [_tick(v) for v in xs], rotation=45, ha="right", fontsize=7)
        ax.set_title(term, fontsize=9)
        ax.set_xlabel(label, fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0][0].legend(fontsize=6)
    return _save(fig, path)


def _per_epoch_curves(ctx, path, values_of, ylabel, axis_from=0):
    """One line per run of ``values_of(history)`` against the epoch; the y axis spans the values from
    epoch ``axis_from + 1`` on when ``axis_from`` is set (matplotlib's own limits otherwise)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=SIZE)
    shown = []
    for r, label in zip(ctx.runs, _labels(ctx)):
        values = values_of(r.get("history", {}))
        shown += values[axis_from:]
        ax.plot(range(1, len(values) + 1), values, marker=".", label=label)
    if axis_from and shown:
        low, high = min(shown), max(shown)
        ax.set_ylim(low - 0.05 * (high - low + 1e-9), high + 0.05 * (high - low + 1e-9))
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=6)
    return _save(fig, path)


def training_curves(ctx, path):
    """The logged total_loss per epoch of every run."""
    return _per_epoch_curves(ctx, path, lambda history: history.get("total_loss", []), "total_loss (train)")


def elbo_curves(ctx, path):
    """The training negative ELBO per epoch, ``reconstruction_loss + kl_loss`` unweighted.

    ``total_loss`` weights the KL by the warm-up's ``kl_weight``, so during a warm-up it is not the
    bound, and a run with a warm-up cannot be compared with one without on it; this sum can. The axis
    spans the values from the third epoch on: a warm-up's first ones (a KL of hundreds of nats) would
    squash every curve flat.
    """
    def negative_elbo(history):
        return [a + b for a, b in zip(history.get("reconstruction_loss", []), history.get("kl_loss", []))]

    return _per_epoch_curves(ctx, path, negative_elbo, "-ELBO, train (nats)", axis_from=2)


def training_time(ctx, path):
    """Seconds per epoch of every run."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=SIZE)
    labels = _labels(ctx)
    ax.bar(range(len(labels)), [r.get("seconds_per_epoch", np.nan) for r in ctx.runs])
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right", fontsize=7)
    ax.set_ylabel("seconds per epoch")
    return _save(fig, path)


def _scatter_pairs(ctx, path, x_term, y_term, title):
    xs = [ctx.test_value(r, x_term) for r in ctx.runs]
    ys = [ctx.test_value(r, y_term) for r in ctx.runs]
    if not np.isfinite(xs).any() or not np.isfinite(ys).any():
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=SIZE)
    ax.plot(xs, ys, "o")
    for x, y, label in zip(xs, ys, _labels(ctx)):
        ax.annotate(label, (x, y), fontsize=6)
    ax.set_xlabel(f"{x_term} (test)")
    ax.set_ylabel(f"{y_term} (test)")
    ax.set_title(title, fontsize=9)
    return _save(fig, path)


def rate_distortion(ctx, path):
    """beta: the rate (KL) against the distortion (reconstruction), test split."""
    return _scatter_pairs(ctx, path, "kl_loss", "reconstruction_loss", "rate-distortion (test)")


def sparsity_tradeoff(ctx, path):
    x_term = _first_present(ctx, ("mean_activation", "mean_code_activation"))
    return _scatter_pairs(ctx, path, x_term, "reconstruction_loss", "reconstruction vs mean activation (test)")


def _first_present(ctx, names):
    return next((n for n in names if any(n in r.get("test", {}) for r in ctx.runs)), names[-1])


def contractive_tradeoff(ctx, path):
    x_term = _first_present(ctx, ("jacobian_frobenius", "mean_jacobian_frobenius", "contractive_loss"))
    return _scatter_pairs(ctx, path, x_term, "reconstruction_loss", "reconstruction vs ‖J_f‖ (test)")


def code_quality(ctx, path):
    """latent: k-NN and linear-probe accuracy of the test codes against the swept setting."""
    return terms_vs_setting(ctx, path, terms=("knn_accuracy", "linear_probe_accuracy", "active_units"), train=False)


def denoising(ctx, path):
    """noise: PSNR of denoised test images against the test-time noise level, per noise type, one line per run."""
    pattern = re.compile(r"denoised_psnr_(?P<noise>[a-z_]+?)_(?P<level>[0-9.e-]+)_db$")
    found = {}
    for r in ctx.runs:
        for key in r.get("test", {}):
            m = pattern.match(key)
            if m:
                found.setdefault(m["noise"], set()).add(float(m["level"]))
    if not found:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(found), figsize=(2.8 * len(found) + 0.6, 2.8), squeeze=False)
    for ax, (noise, levels) in zip(axes[0], sorted(found.items())):
        levels = sorted(levels)
        for r, label in zip(ctx.runs, _labels(ctx)):
            ax.plot(levels, [ctx.test_value(r, f"denoised_psnr_{noise}_{v:g}_db") for v in levels], "o-", label=label)
        noisy = [ctx.test_value(ctx.runs[0], f"noisy_psnr_{noise}_{v:g}_db") for v in levels]
        ax.plot(levels, noisy, "k:", label="noisy input")
        ax.set_title(f"test noise: {noise}", fontsize=9)
        ax.set_xlabel("test-time level", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0][0].set_ylabel("PSNR (dB)", fontsize=8)
    axes[0][0].legend(fontsize=6)
    return _save(fig, path)


def reconstruction_grid(ctx, path, count=8):
    """The first ``count`` test images (top row) and each run's reconstructions below, one row per run."""
    from keraszoo.visualization import make_grid
    from keraszoo.visualization import save_png

    x, y = ctx.images(count)
    if x is None:
        return None
    rows = [x]
    for r in ctx.runs:
        model = ctx.model(r)
        rows.append(np.asarray(model.reconstruct(x, **model.label_kwargs(y))))
    return save_png(make_grid(np.concatenate(rows), ncols=count, scale=1), path)


def samples_grid(ctx, path, count=8):
    """Samples from the prior (seed 0) of every generative run, one row per run."""
    from keraszoo.visualization import make_grid
    from keraszoo.visualization import save_png

    rows = []
    for r in ctx.runs:
        model = ctx.model(r)
        if not model.is_generative:
            continue
        kw = model.label_kwargs(model.cycled_labels(count))  # a conditional model: every class in turn
        try:
            rows.append(np.asarray(model.sample(count, seed=0, **kw)))
        except (NotImplementedError, ValueError):  # a VQ-VAE before its prior is trained
            continue
    if not rows:
        return None
    return save_png(make_grid(np.concatenate(rows), ncols=count, scale=1), path)


def interpolation_grid(ctx, path, steps=8):
    """For every generative run, the decoded line between the codes of the first two test images."""
    from keraszoo.visualization import make_grid
    from keraszoo.visualization import save_png

    x, y = ctx.images(2)
    if x is None:
        return None
    rows = []
    for r in ctx.runs:
        model = ctx.model(r)
        if not model.is_generative:
            continue
        kw = {"labels": int(y[0]), "end_labels": int(y[1])} if model.requires_labels else {}
        rows.append(np.asarray(model.interpolate(x[0], x[1], steps=steps, **kw)))
    if not rows:
        return None
    return save_png(make_grid(np.concatenate(rows), ncols=steps, scale=1), path)


def latent_scatter(ctx, path, count=500):
    """Test codes of every run with a 2-dimensional code, coloured by class."""
    runs = [r for r in ctx.runs if int(r["params"].get("latent_dim") or 0) == 2]
    x, y = ctx.images(count)
    if not runs or x is None:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(runs), figsize=(2.8 * len(runs), 2.8), squeeze=False)
    for ax, r in zip(axes[0], runs):
        model = ctx.model(r)
        codes = np.asarray(model.encode(x, **model.label_kwargs(y)))
        if codes.ndim != 2 or codes.shape[1] != 2:
            continue
        points = ax.scatter(codes[:, 0], codes[:, 1], c=y, cmap="tab10", s=4, vmin=-0.5, vmax=9.5)
        ax.set_title(ctx.label(r), fontsize=8)
        ax.tick_params(labelsize=6)
    fig.colorbar(points, ax=axes[0].tolist(), ticks=range(10), fraction=0.05)
    fig.savefig(path, dpi=DPI)  # no tight_layout: the shared colour bar
    plt.close(fig)
    return pathlib.Path(path)


#: (file stem, caption, fn) drawn for every study.
GENERIC_FIGURES = (
    ("terms", "L_total and each of its terms against the swept setting: last training epoch (solid) and test (dashed)",
     terms_vs_setting),
    ("curves", "training L_total per epoch", training_curves),
    ("reconstructions", "first test images (top row) and each run's reconstructions (one row per run, table order)",
     reconstruction_grid),
    ("samples", "samples from the prior (seed 0) of the generative runs, one row per run", samples_grid),
    ("interpolations", "decoded latent line between two test images, generative runs", interpolation_grid),
    ("latent", "test codes of the runs with latent size 2, coloured by class", latent_scatter),
    ("time", "seconds per training epoch", training_time),
)

#: study name -> extra (file stem, caption, fn) figures; a user's study gets the generic ones only.
STUDY_FIGURES = {
    "beta": (("rate_distortion", "rate (KL) against distortion (reconstruction), test split", rate_distortion),),
    "sparsity": (("sparsity", "reconstruction against mean code activation, test split", sparsity_tradeoff),),
    "contractive": (("contractive", "reconstruction against the encoder's Jacobian norm, test split",
                     contractive_tradeoff),),
    "latent": (("codes", "k-NN / linear-probe accuracy and active units of the test codes against the setting",
                code_quality),),
    "ladder": (("elbo", "training negative ELBO per epoch (reconstruction + unweighted KL: the bound, warm-up or not; "
                        "the axis spans the values from the third epoch on)",
                elbo_curves),),
    "noise": (("denoising", "PSNR of denoised test images against the test-time noise level (dotted: the noisy input)",
               denoising),),
}
