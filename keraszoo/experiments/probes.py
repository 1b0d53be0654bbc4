"""Probes: what a study measures on a trained model beyond ``keraszoo.evaluate``'s metrics.

Every probe is registered in :data:`PROBES` under its name with the models it
applies to; a study lists the probes it wants (``"probes": ["code_shift"]``, or
``{"denoising_psnr": {"levels": {"gaussian": [0.1, 0.5]}}}`` with options).
A probe that does not apply to a run's model (active units of a plain
autoencoder) is left out of that run's results. Each returns a flat
``{name: number}`` measured on the evaluated test images ``x`` (float32 in
[0, 1]) and their labels ``y``:

``active_units`` (VAE family)
    ``active_units``: code units whose posterior mean varies across the test
    images with variance > 0.01 (Burda et al., 2016), and
    ``active_units_fraction`` = that / ``latent_dim``.
``jacobian_frobenius`` (flat-code models)
    ``jacobian_frobenius``: mean over images of ``||J_f(x)||_F``, ``J_f`` the
    Jacobian of the deterministic code w.r.t. the input (exact, by autodiff: the
    contractive autoencoder's own computation, applied to any encoder).
``code_shift`` (flat-code models)
    ``code_shift``: mean ``||f(x~) - f(x)||_2`` for ``x~ = clip(x + sigma*eps, 0, 1)``
    (``sigma`` 0.1 by default); ``code_shift_relative``: that over the codes'
    spread, mean ``||f(x) - mean f||_2`` (codes of different scales compare).
``denoising_psnr`` (every model)
    ``noisy_psnr_<noise>_<level>_db`` and ``denoised_psnr_<noise>_<level>_db``:
    PSNR of corrupted test images and of their reconstructions, for each test-time
    noise type and level (the denoising AE's corruptions; every model sees the
    very same corrupted images).
``mean_code_activation`` (flat-code models)
    ``mean_code_activation``, ``mean_abs_code_activation`` and
    ``near_zero_code_fraction`` (``|h| < 0.01``) of the test codes.
``anomaly`` (every model; a one-class run: its Recipe's ``classes``)
    for every anomaly score the model declares (``model.anomaly_methods``, or the
    ``methods`` option): ``anomaly_auroc_<score>``, ``anomaly_ap_<score>``, the ROC
    curve's points ``anomaly_tpr_<score>_at_<fpr>`` and the most anomalous test
    images (:func:`keraszoo.anomaly.metrics.anomaly_probe`); the run's classes are
    normal, the others anomalous. Options: ``methods``, ``iwae_samples``,
    ``elbo_samples``.

Adding a probe is a function and one :data:`PROBES` entry. A probe that needs more of
the run than its test images (its arguments, its training images) declares
``needs_run`` and gets the run's :class:`RunInputs` as ``run=``.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Callable

import numpy as np

__all__ = ["PROBES", "Probe", "RunInputs", "check_probes", "compute_probes"]

BATCH_SIZE = 256


@dataclasses.dataclass(frozen=True)
class Probe:
    """A registered probe: ``fn(model, x, y, *, seed, **options) -> {name: number}``.

    ``applies(model) -> bool`` says whether the probe means something for the model;
    ``options`` declares the options it takes and checks their values (a study's
    spec is checked whole before its first run).
    """

    fn: Callable
    applies: Callable
    #: ``{option: check(path, value)}``: each option the probe takes, and the check of its value
    #: (raises ``ValueError`` naming ``path`` and what was expected).
    options: dict = dataclasses.field(default_factory=dict)
    doc: str = ""
    #: the probe takes the run's :class:`RunInputs` as ``run=`` (its Recipe, its training images).
    needs_run: bool = False


@dataclasses.dataclass(frozen=True)
class RunInputs:
    """What a probe may need of its run beyond the test images: its Recipe and its training images."""

    recipe: object
    data_dir: object = None

    def training_images(self):
        """``(x, y)``: the images the run trained on (its classes, less the validation hold-out) as [0, 1] floats."""
        from keraszoo.training.train import _training_arrays

        x, _, y, _ = _training_arrays(self.recipe, self.data_dir, None, True)
        x = np.asarray(x)
        return (x.astype("float32") / 255.0 if x.dtype == np.uint8 else x.astype("float32")), y


# --------------------------------------------------------------------------- helpers
def _labels_of(model, y):
    return (y,) if model.requires_labels else ()


def _codes(model, x, y):
    """Deterministic codes of ``x`` (conditional models get their labels), NumPy ``(N, latent_dim)``."""
    from keraszoo.models.numeric import to_numpy

    given = _labels_of(model, y)
    return np.concatenate([to_numpy(model.encode(x[i:i + BATCH_SIZE], *(g[i:i + BATCH_SIZE] for g in given)))
                           for i in range(0, len(x), BATCH_SIZE)], axis=0).astype("float64")


def _reconstruct(model, x, y):
    from keraszoo.models.numeric import to_numpy

    given = _labels_of(model, y)
    return np.concatenate([to_numpy(model.reconstruct(x[i:i + BATCH_SIZE], *(g[i:i + BATCH_SIZE] for g in given)))
                           for i in range(0, len(x), BATCH_SIZE)], axis=0)


def _flat_codes(model) -> bool:
    """Codes are a float vector of ``latent_dim`` per image (not the VQ-VAE's grid of indices)."""
    return model.has_flat_codes


def _unconditional_flat(model) -> bool:
    return model.has_flat_codes and not model.requires_labels


def _vae_family(model) -> bool:
    return model.has_posterior and model.has_flat_codes


def corrupt(x, noise, level, rng):
    """``x~ ~ q(x~|x)``, the denoising autoencoder's corruptions, drawn with NumPy.

    ``gaussian``: ``clip(x + level*eps, 0, 1)``; ``masking``: each pixel 0 with
    probability ``level``; ``salt_and_pepper``: each pixel 0 or 1 (equally likely)
    with probability ``level`` (``keraszoo.models.DenoisingAutoEncoder.corrupt``).
    """
    x = np.asarray(x, "float32")
    if noise == "gaussian":
        return np.clip(x + level * rng.standard_normal(x.shape).astype("float32"), 0.0, 1.0)
    u = rng.random(x.shape)
    if noise == "masking":
        return np.where(u < level, 0.0, x).astype("float32")
    if noise == "salt_and_pepper":
        return np.where(u < level / 2, 0.0, np.where(u < level, 1.0, x)).astype("float32")
    raise ValueError(f"noise must be one of {', '.join(NOISE_TYPES)}; got {noise!r}.")


NOISE_TYPES = ("gaussian", "masking", "salt_and_pepper")


# --------------------------------------------------------------------------- the probes
def active_units(model, x, y, *, seed, threshold=0.01):
    from keraszoo.evaluation import active_units as count

    del seed
    units = count(_codes(model, x, y), threshold=threshold)
    return {"active_units": int(units), "active_units_fraction": units / model.latent_dim}


def jacobian_frobenius(model, x, y, *, seed, max_examples=500):
    # The one implementation of the exact per-example ||J||_F^2 (the contractive AE's penalty).
    from keraszoo.models.contractive import _jacobian_frobenius_sq_autodiff
    from keraszoo.models.numeric import to_numpy

    del y, seed
    x = x[:max_examples]
    fn = lambda inputs: model._deterministic_code(inputs, training=False)  # noqa: E731 (a closure)
    sq = np.concatenate([to_numpy(_jacobian_frobenius_sq_autodiff(fn, model._check_inputs(x[i:i + 64])))
                         for i in range(0, len(x), 64)])
    return {"jacobian_frobenius": float(np.mean(np.sqrt(np.maximum(sq, 0.0))))}


def code_shift(model, x, y, *, seed, sigma=0.1):
    rng = np.random.default_rng(seed)
    codes = _codes(model, x, y)
    shifted = _codes(model, corrupt(x, "gaussian", sigma, rng), y)
    shift = float(np.mean(np.linalg.norm(shifted - codes, axis=1)))
    spread = float(np.mean(np.linalg.norm(codes - codes.mean(0), axis=1)))
    return {"code_shift": shift, "code_shift_relative": shift / spread if spread > 0 else float("nan")}


DEFAULT_TEST_NOISE = {"gaussian": (0.1, 0.3, 0.5), "masking": (0.25, 0.5), "salt_and_pepper": (0.1, 0.2)}
#: the keys :func:`denoising_psnr` writes, ``denoised_psnr_<noise>_<level>_db`` (``noisy_psnr_...`` beside each).
DENOISED_KEY = re.compile(r"denoised_psnr_(?P<noise>[a-z_]+?)_(?P<level>[0-9.e-]+)_db$")


def strongest_test_noise(runs) -> dict:
    """``{noise: its highest test-time level}`` of the :func:`denoising_psnr` keys the runs' ``test`` hold."""
    strongest = {}
    for r in runs:
        for key in r.get("test", {}):
            m = DENOISED_KEY.match(key)
            if m:
                strongest[m["noise"]] = max(strongest.get(m["noise"], 0.0), float(m["level"]))
    return strongest


def denoising_psnr(model, x, y, *, seed, levels=None):
    from keraszoo.models.numeric import psnr

    levels = DEFAULT_TEST_NOISE if levels is None else levels
    out = {}
    for n, (noise, values) in enumerate(sorted(levels.items())):
        for m, level in enumerate(values):
            noisy = corrupt(x, noise, float(level), np.random.default_rng([seed, n, m]))
            out[f"noisy_psnr_{noise}_{float(level):g}_db"] = psnr(x, noisy)
            out[f"denoised_psnr_{noise}_{float(level):g}_db"] = psnr(x, _reconstruct(model, noisy, y))
    return out


def mean_code_activation(model, x, y, *, seed):
    del seed
    codes = _codes(model, x, y)
    return {"mean_code_activation": float(codes.mean()), "mean_abs_code_activation": float(np.abs(codes).mean()),
            "near_zero_code_fraction": float(np.mean(np.abs(codes) < 0.01))}


# --------------------------------------------------------------------------- option checks
def _refuse(path, expected, value):
    from keraszoo.experiments.study import describe_value

    raise ValueError(f"{path}: expected {expected}, got {value!r} ({describe_value(value)}).")


def _is_number(value) -> bool:
    import numbers

    return isinstance(value, numbers.Real) and not isinstance(value, bool) and bool(np.isfinite(float(value)))


def _non_negative(path, value):
    if not _is_number(value) or value < 0:
        _refuse(path, "a finite number >= 0", value)


def _positive_int(path, value):
    import numbers

    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        _refuse(path, "a positive integer", value)


def _anomaly_methods(path, value):
    from keraszoo.models.anomaly_scores import ANOMALY_METHODS

    if not isinstance(value, (list, tuple)) or not value or not all(isinstance(v, str) for v in value):
        _refuse(path, "a non-empty list of anomaly scores (" + ", ".join(ANOMALY_METHODS) + ")", value)
    for i, method in enumerate(value):
        if method not in ANOMALY_METHODS:
            close = difflib.get_close_matches(str(method), list(ANOMALY_METHODS), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"{path}[{i}]: unknown anomaly score {method!r}.{hint} Scores: {', '.join(ANOMALY_METHODS)}.")


def _anomaly(model, x, y, *, seed, run, **options):
    from keraszoo.anomaly.metrics import anomaly_probe

    return anomaly_probe(model, x, y, seed=seed, run=run, **options)


def _noise_levels(path, value):
    """``{noise type: [level, ...]}``: known noise types, finite levels (probabilities for masking, salt_and_pepper)."""
    if not isinstance(value, dict) or not value:
        _refuse(path, "an object {noise type: [levels]} of " + ", ".join(NOISE_TYPES), value)
    for noise, levels in value.items():
        if noise not in NOISE_TYPES:
            close = difflib.get_close_matches(str(noise), NOISE_TYPES, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"{path}: unknown noise type {noise!r}.{hint} Noise types: {', '.join(NOISE_TYPES)}.")
        if not isinstance(levels, (list, tuple)) or not levels:
            _refuse(f"{path}.{noise}", "a non-empty list of levels", levels)
        for i, level in enumerate(levels):
            if noise == "gaussian":
                _non_negative(f"{path}.{noise}[{i}]", level)
            elif not _is_number(level) or not 0 <= level <= 1:
                _refuse(f"{path}.{noise}[{i}]", "a probability in [0, 1]", level)


#: name -> :class:`Probe`.
PROBES = {
    "active_units": Probe(active_units, _vae_family, {"threshold": _non_negative},
                          "units with posterior-mean variance > 0.01"),
    "jacobian_frobenius": Probe(jacobian_frobenius, _unconditional_flat, {"max_examples": _positive_int},
                                "mean ||J_f(x)||_F of the code"),
    "code_shift": Probe(code_shift, _flat_codes, {"sigma": _non_negative}, "how far codes move under small input noise"),
    "denoising_psnr": Probe(denoising_psnr, lambda model: True, {"levels": _noise_levels},
                            "PSNR of denoised test images at several test-time noise levels"),
    "mean_code_activation": Probe(mean_code_activation, _flat_codes, {}, "mean code activation"),
    "anomaly": Probe(_anomaly, lambda model: True,
                     {"methods": _anomaly_methods, "iwae_samples": _positive_int, "elbo_samples": _positive_int},
                     "one-class AUROC and average precision of every anomaly score", needs_run=True),
}


# --------------------------------------------------------------------------- the API
def check_probes(probes) -> dict:
    """``probes`` (names, or ``{name: {option: value}}``) as ``{name: options}``.

    Unknown names and options, and option values of the wrong kind (a NaN, a
    string for a number, an unknown noise type), are refused with ``ValueError``
    naming the probe and option (``code_shift.sigma: expected ...``).
    """
    if isinstance(probes, (list, tuple)):
        if not all(isinstance(p, str) for p in probes):
            raise ValueError(f"expected a list of probe names or an object {{name: {{option: value}}}}; got {list(probes)!r}.")
        probes = {p: {} for p in probes}
    if not isinstance(probes, dict):
        raise ValueError(f"expected a list of probe names or an object {{name: {{option: value}}}}; got {probes!r}.")
    out = {}
    for name, options in probes.items():
        if name not in PROBES:
            close = difflib.get_close_matches(str(name), list(PROBES), n=2)
            hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise ValueError(f"unknown probe {name!r}.{hint} Probes: {', '.join(PROBES)}.")
        if not isinstance(options, dict):
            raise ValueError(f"{name}: options must be an object {{option: value}}; got {options!r}.")
        declared = PROBES[name].options
        bad = [k for k in options if k not in declared]
        if bad:
            close = difflib.get_close_matches(str(bad[0]), list(declared), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"{name} has no option {bad[0]!r}.{hint} Its options: {', '.join(declared) or 'none'}.")
        for option, value in options.items():
            declared[option](f"{name}.{option}", value)
        out[name] = dict(options)
    return out


def compute_probes(model, x, y, probes, *, seed=0, run=None) -> dict:
    """The values of ``probes`` (``{name: options}``) that apply to ``model``, on test images ``x``.

    ``run``: the run's :class:`RunInputs`, for the probes that need it (``needs_run``).
    """
    out = {}
    for name, options in check_probes(probes).items():
        probe = PROBES[name]
        if probe.applies(model):
            if probe.needs_run:
                if run is None:
                    raise ValueError(f"The {name} probe measures a run: it needs the run's inputs (run=RunInputs(...)).")
                options = {**options, "run": run}
            out.update(probe.fn(model, np.asarray(x, "float32"), y, seed=seed, **options))
    return out
